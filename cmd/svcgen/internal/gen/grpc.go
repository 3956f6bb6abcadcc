package gen

import (
	"bytes"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"text/template"

	"github.com/warren-mesh/warren/templates"
)

// GRPCEmitter is the gRPC transport, on for a service whose Service
// interface carries a //warren:grpc line: a .proto derived from the Go
// types (NAMEpb/NAME.proto, compiled by protoc into the same directory)
// and, in grpc_gen.go, go-kit transport/grpc server and client adapters
// that convert between the Go types and the messages.
type GRPCEmitter struct{}

var grpcTmpl = template.Must(template.New("grpc").ParseFS(templates.FS, "grpc/*.tmpl"))

// Name implements Emitter.
func (GRPCEmitter) Name() string { return "grpc" }

// File implements Emitter.
func (GRPCEmitter) File() string { return "grpc_gen.go" }

// TestFile implements TestFiler: grpc_gen_test.go round-trips every type
// the messages carry through grpc_gen.go's conversions
// (svcgentest.RoundTrip), so a field added without a gen fails `go test`.
func (GRPCEmitter) TestFile() string { return "grpc_gen_test.go" }

// grpcService is the gRPC view of a service: what grpc_gen.go.tmpl and
// service.proto.tmpl render.
type grpcService struct {
	*Service
	PB           string // Go package of the messages: userpb
	ProtoPackage string // user.v1
	GRPCName     string // the proto service: UserService
	Methods      []*grpcMethod
	Messages     []*protoMessage
	// Retired are the messages of the previous .proto the service no
	// longer uses, kept with every number and name they had reserved, so
	// a message of that name that comes back never reuses them.
	Retired  []*protoMessage
	Imports  []string // well-known .proto files the messages use
	NeedTime bool     // grpc_gen.go converts timestamps or durations
	Helpers  map[string]bool
}

// grpcMethod is one rpc.
type grpcMethod struct {
	*Method
	// Retry is the grpcclient option of the method's retry class.
	Retry string
	// Doc is the method's doc comment as .proto comment lines
	// (protodoc.go).
	Doc []string
	// ReqRef and RespRef name the request and response messages in the
	// rpc line (rpcRef).
	ReqRef, RespRef string
}

// Idempotent says whether the .proto marks the rpc IDEMPOTENT.
func (m *grpcMethod) IdempotentRPC() bool { return m.Retry == "grpcclient.Idempotent()" }

// protoMessage is one Go struct type as a message.
type protoMessage struct {
	Name   string // the Go type and the message
	Fields []*protoField
	// Doc is the type's doc comment as .proto comment lines (protodoc.go).
	Doc []string
	// Reserved are the message's reserved lines: numbers, then names
	// (protonum.go).
	Reserved []protoReserved
	// Optional says a field is proto3 optional: fromPB reads it from the
	// message's field, not its nil-safe getter.
	Optional bool
	// pbNames are the Go names protoc-gen-go has given the fields so far,
	// and whether each has a getter (pbFieldNames).
	pbNames map[string]bool
}

// protoField is one field of a message and its conversions.
type protoField struct {
	Type   string // the .proto type: "repeated Item"
	Name   string // the .proto name: "items"
	Num    int    // the field number, set once the message is complete
	GoName string // the Go struct's field
	PBName string // the generated message's field (pbFieldNames)
	ToPB   string // Go expression of the message field from v (the Go struct)
	FromPB string // Go expression of the Go field from m (the message)
	// Doc is the field's doc comment, and the values of its named string
	// type's constants, as .proto comment lines (protodoc.go).
	Doc []string
}

// Prepare implements Emitter.
func (e GRPCEmitter) Prepare(svc *Service, pkg *Package) (Transport, Problems) {
	var probs Problems
	for _, m := range svc.Methods {
		for _, a := range m.Annotations[e.Name()] {
			probs = append(probs, Problem{Pos: a.Pos, Method: m.Name,
				Msg: "//warren:grpc goes in the doc comment of the Service interface (it serves the whole service over gRPC), not on a method"})
		}
	}
	on := svc.Annotations[e.Name()]
	if len(on) == 0 {
		return nil, probs
	}
	for _, a := range on {
		if len(a.Args) > 0 {
			probs = append(probs, Problem{Pos: a.Pos, Msg: fmt.Sprintf("%q takes no arguments; write `//warren:grpc`", a.Text)})
		}
	}
	gs := &grpcService{Service: svc, PB: svc.Package + "pb", ProtoPackage: svc.Package + ".v1",
		GRPCName: TypeName(svc.Name) + "Service", Helpers: map[string]bool{}}
	mp := &grpcMapper{gs: gs, pkg: pkg, msgs: map[string]*protoMessage{}, imports: map[string]bool{}}
	for _, m := range svc.Methods {
		gm := &grpcMethod{Method: m, Retry: grpcRetry(m)}
		for i, t := range []string{m.Req, m.Resp} {
			var fields []string
			if i == 0 {
				for _, tr := range svc.transports {
					fields = append(fields, tr.RequestFields(m.Name)...)
				}
			}
			probs = append(probs, mp.message(m.Name, t, fields)...)
		}
		gs.Methods = append(gs.Methods, gm)
	}
	for _, gm := range gs.Methods {
		gm.ReqRef, gm.RespRef = gs.rpcRef(gm.Req), gs.rpcRef(gm.Resp)
	}
	mp.nameReachers(svc.Methods, probs)
	gs.document(pkg)
	for _, msg := range gs.Messages {
		if msg.Name == gs.GRPCName {
			probs = append(probs, Problem{Pos: pkg.TypePos(msg.Name), Msg: fmt.Sprintf("type %s has the name of the gRPC service svcgen generates for %s; rename the type", msg.Name, svc.Name)})
		}
	}
	for imp := range mp.imports {
		gs.Imports = append(gs.Imports, imp)
	}
	slices.Sort(gs.Imports)
	// Field numbers follow the .proto svcgen wrote before (protonum.go).
	prev, err := pkg.Previous(gs.ProtoFile())
	if err != nil {
		probs = append(probs, Problem{Pos: position(path.Join(pkg.s.dir, gs.ProtoFile()), 0),
			Msg: fmt.Sprintf("cannot read the previous .proto, whose field numbers the new one keeps: %v", err)})
		return gs, probs
	}
	if prev == nil {
		p, note := gs.protoGone(pkg)
		if p != nil {
			return gs, append(probs, *p)
		}
		if note != "" {
			svc.notes = append(svc.notes, note)
		}
	}
	numbers := parseProtoNumbers(prev)
	used := map[string]bool{}
	for _, msg := range gs.Messages {
		used[msg.Name] = true
		for _, n := range msg.number(numbers[msg.Name]) {
			svc.notes = append(svc.notes, path.Join(pkg.s.dir, gs.ProtoFile())+": "+n)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(numbers)) {
		if used[name] {
			continue
		}
		msg := &protoMessage{Name: name}
		msg.number(numbers[name]) // no fields: every number and name reserved
		if len(msg.Reserved) > 0 {
			gs.Retired = append(gs.Retired, msg)
		}
	}
	return gs, probs
}

// rpcRef is how an rpc line names the message msg. protoc looks a name
// in an rpc line up from inside the service first, where a method of the
// same name (Charge beside a type Charge) hides the message and the file
// is refused ("Charge" is not a message type); such a message is named
// from the root (.payment.v1.Charge). The others keep their short names,
// so the .proto of a service without such a clash does not change.
func (gs *grpcService) rpcRef(msg string) string {
	for _, m := range gs.Methods {
		if m.Name == msg {
			return "." + gs.ProtoPackage + "." + msg
		}
	}
	return msg
}

// Unwired implements MainWiring: a main serves gRPC through
// NewTransports (both transports, what `svcgen new --grpc` writes) or
// NewGRPCTransport (the gRPC half alone).
func (gs *grpcService) Unwired(mainPath string, main []byte) string {
	if bytes.Contains(main, []byte("NewTransports(")) || bytes.Contains(main, []byte("NewGRPCTransport(")) {
		return ""
	}
	p := gs.Package
	return fmt.Sprintf("%s has gRPC generated (//warren:grpc), but %s does not serve it (no %s.NewTransports), so it serves and registers HTTP only. "+
		"Have its build function return %s.NewTransports(d, %s.MakeEndpoints(svc), grpcSettings), with grpcSettings := grpcserver.DefaultSettings() "+
		"and bootstrap.WithSettings(&grpcSettings) among Main's options, as `svcgen new --grpc` writes it (Warren's docs/svcgen.md)",
		gs.Name, mainPath, p, p, p)
}

// grpcRetry is a method's retry class over gRPC, as over HTTP: GET routes
// and //warren:idempotent methods are idempotent, //warren:keyed ones
// carry one idempotency key.
func grpcRetry(m *Method) string {
	switch {
	case m.Keyed:
		return "grpcclient.Keyed()"
	case m.NoRetry:
		return ""
	case m.Idempotent:
		return "grpcclient.Idempotent()"
	}
	for _, a := range m.Annotations["http"] {
		if len(a.Args) > 0 && a.Args[0] == "GET" {
			return "grpcclient.Idempotent()"
		}
	}
	return ""
}

// ProtoFile is where the .proto goes, relative to the service directory:
// userpb/user.proto.
func (gs *grpcService) ProtoFile() string { return path.Join(gs.PB, gs.Package+".proto") }

// GoPackage is the go_package option of the .proto.
func (gs *grpcService) GoPackage() string {
	return gs.Module + "/services/" + gs.Name + "/" + gs.PB + ";" + gs.PB
}

// Declares implements Transport.
func (gs *grpcService) Declares() []string {
	names := []string{"NewTransports", "NewGRPCServer", "NewGRPCTransport", "MakeGRPCClientEndpoints", "NewGRPCClient", "GRPCServiceName",
		"grpcServer", "grpcConvert", "grpcConvError", "grpcSlice", "grpcMap", "grpcPtrToPB", "grpcPtrFromPB", "grpcPtrElemToPB",
		"grpcNarrow", "grpcOpt", "grpcTimeElemToPB", gs.PB}
	for _, m := range gs.Messages {
		names = append(names, "toPB"+m.Name, "fromPB"+m.Name)
	}
	return names
}

// Route implements Transport.
func (gs *grpcService) Route(method string) string {
	return "/" + gs.ProtoPackage + "." + gs.GRPCName + "/" + method
}

// RequestFields implements Transport: gRPC needs none.
func (gs *grpcService) RequestFields(string) []string { return nil }

// Client implements Transport.
func (gs *grpcService) Client() ClientTransport {
	return ClientTransport{Name: "gRPC", Endpoints: "MakeGRPCClientEndpoints"}
}

// Render implements Transport.
func (gs *grpcService) Render() ([]byte, error) {
	return execute(grpcTmpl, "grpc_gen.go.tmpl", gs)
}

// RenderTest implements TestRenderer.
func (gs *grpcService) RenderTest() ([]byte, error) {
	return execute(grpcTmpl, "grpc_gen_test.go.tmpl", gs)
}

// Extra implements ExtraFiles: the .proto, which protoc compiles into
// the same directory.
func (gs *grpcService) Extra() (map[string][]byte, error) {
	var b strings.Builder
	if err := grpcTmpl.ExecuteTemplate(&b, "service.proto.tmpl", gs); err != nil {
		return nil, fmt.Errorf("svcgen: template service.proto.tmpl: %w", err)
	}
	return map[string][]byte{gs.ProtoFile(): []byte(b.String())}, nil
}
