package gen

// An Emitter is one transport's part of svcgen: it owns the //warren:KEY
// annotation lines named after it, checks a service for its transport and
// renders one generated file. Adding a transport to svcgen is one Emitter
// (a file of this package and its template) listed in Emitters; the
// loader, the endpoint and client files and the CLI do not change.
type Emitter interface {
	// Name is the transport's name and the key of its annotations:
	// "http" owns //warren:http lines.
	Name() string
	// File is the file it writes in the service directory
	// ("transport_gen.go"); svcgen rewrites it on every gen.
	File() string
	// Prepare checks svc for the transport, reading each method's
	// Annotations[Name()] (and the service's, from the doc comment of the
	// Service interface) and the request types through pkg. Problems
	// carry the position of what is wrong. A nil Transport: the service
	// does not use this transport.
	Prepare(svc *Service, pkg *Package) (Transport, Problems)
}

// ExtraFiles is implemented by a Transport that writes files besides its
// Go file, such as a .proto (by path relative to the service directory).
// svcgen writes them with the others; `svcgen gen` compiles each .proto
// with protoc into the .pb.go files beside it.
type ExtraFiles interface {
	Extra() (map[string][]byte, error)
}

// MainWiring is implemented by a Transport the service's main must serve
// by name: `svcgen new` writes a main that does, but a main written before
// the service gained the transport does not, and main.go is the user's, so
// gen never rewrites it. Unwired is given the main's path (as messages
// show it) and source, and returns what to change in it, or "" when the
// main serves the transport.
type MainWiring interface {
	Unwired(mainPath string, main []byte) string
}

// TestFiler is implemented by an Emitter whose transport has a generated
// test beside its Go file ("grpc_gen_test.go"), which svcgen rewrites on
// every gen as it does the Go file: it checks the generated file against
// the service's types as they are when the tests run. Its Transport
// implements TestRenderer.
type TestFiler interface {
	TestFile() string
}

// TestRenderer renders the test file of a TestFiler's transport, gofmt'd.
type TestRenderer interface {
	RenderTest() ([]byte, error)
}

// Transport is an Emitter's view of one service, checked and ready to
// render.
type Transport interface {
	// Declares lists the top-level names its file declares, so svcgen
	// refuses user code that declares them too.
	Declares() []string
	// Route is how `svcgen list` shows a method ("GET /users/{id}").
	Route(method string) string
	// RequestFields are the string fields a request type svcgen appends
	// for method must have (an HTTP route's path parameters), by json
	// name.
	RequestFields(method string) []string
	// Client names the transport's client side, or is zero when it has
	// none.
	Client() ClientTransport
	// Render returns the file's content, gofmt'd.
	Render() ([]byte, error)
}

// Emitters are the transports svcgen generates, in the order their files
// and client sides are considered; the first with a client side is the
// generated Client's default.
func Emitters() []Emitter {
	return []Emitter{HTTPEmitter{}, GRPCEmitter{}}
}

// coreFiles are the transport-neutral generated files.
var coreFiles = []string{"endpoint_gen.go", "client_gen.go"}

// GeneratedFiles are the files `svcgen gen` rewrites in a service
// directory: the core files and one per transport. Nothing else is ever
// rewritten.
func GeneratedFiles() []string {
	out := append([]string(nil), coreFiles...)
	for _, e := range Emitters() {
		out = append(out, e.File())
		if tf, ok := e.(TestFiler); ok {
			out = append(out, tf.TestFile())
		}
	}
	return out
}
