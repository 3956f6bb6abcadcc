package gen

import (
	"cmp"
	"fmt"
	"go/token"
	"slices"
	"strings"
)

// FrameworkModule is the module path generated code imports the framework
// by. It is Warren's, whatever module the service lives in: a service in
// example.com/shop imports github.com/warren-mesh/warren/framework/client.
const FrameworkModule = "github.com/warren-mesh/warren"

// Service is what svcgen knows about one service, transport-neutral: the
// model every emitter renders from.
type Service struct {
	Name    string // registry name: "user", "fraud-check"
	Package string // Go package name: "user", "fraudcheck"
	// Module is the module the service lives in (the user's); the
	// framework is imported by FrameworkModule.
	Module  string
	Methods []*Method
	// Annotations are the //warren:KEY lines of the Service interface's
	// doc comment an emitter owns (//warren:grpc), by KEY.
	Annotations map[string][]Annotation

	// NotImplemented: emit errNotImplemented for the stubs.
	NotImplemented bool
	// Client is the transport the generated Client calls through by
	// default: the first emitter with a client side.
	Client ClientTransport

	transports []transport // prepared by each emitter, in Emitters order

	// What gen appends to a user file, when anything.
	appendFile string
	stubs      []stub
	types      []newType
	notes      []string // said to the user, not errors
}

// Serves reports whether the service uses the transport an emitter of
// that name generates ("grpc").
func (s *Service) Serves(transport string) bool {
	for _, t := range s.transports {
		if t.emitter.Name() == transport {
			return true
		}
	}
	return false
}

// MainNotes says, for each transport of the service that its main (path
// as messages show it, and source) does not serve, what to change there
// (MainWiring).
func (s *Service) MainNotes(mainPath string, main []byte) []string {
	var out []string
	for _, t := range s.transports {
		if w, ok := t.Transport.(MainWiring); ok {
			if n := w.Unwired(mainPath, main); n != "" {
				out = append(out, n)
			}
		}
	}
	return out
}

// Framework is FrameworkModule, for the templates.
func (*Service) Framework() string { return FrameworkModule }

// ClientTransport names the client side of one transport, for the Client
// template.
type ClientTransport struct {
	Name      string // "HTTP"
	Endpoints string // "MakeHTTPClientEndpoints"
}

// Method is one Service method, as the interface declares it.
type Method struct {
	Name      string
	Req, Resp string
	// Idempotent (//warren:idempotent): the client retries it even after
	// failures where the server may have acted.
	Idempotent bool
	// Keyed (//warren:keyed): each call carries one idempotency key, the
	// same on every attempt (client.Keyed), and is retried like an
	// idempotent call.
	Keyed bool
	// NoRetry (//warren:noretry): the client never retries it.
	NoRetry bool
	Pos     token.Position
	// Doc is the method's doc comment in the Service interface as
	// comment lines ("// text"), without its //warren: lines; the
	// generated client's method carries it.
	Doc []string
	// Annotations are the //warren:KEY lines an emitter owns, by KEY.
	Annotations map[string][]Annotation
}

// Annotation is one //warren:KEY line of a method's doc comment.
type Annotation struct {
	Pos  token.Position
	Text string   // the whole comment
	Args []string // the fields after KEY
}

// Problem is one reason svcgen cannot generate a service.
type Problem struct {
	Pos    token.Position
	Method string
	Msg    string

	typ string // the message type it is in: Method then names every method that reaches it
	// yields: said only when no other problem is at the same place (a
	// //warren:grpc service's JSON problem where the protobuf mapping
	// refuses the same field: a field is named once).
	yields bool
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Pos.IsValid() || p.Pos.Filename != "" {
		b.WriteString(p.Pos.Filename)
		if p.Pos.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Pos.Line)
		}
		b.WriteString(": ")
	}
	if p.Method != "" {
		b.WriteString(p.Method + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found in a service; svcgen writes nothing when
// there is one.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// withoutYielded drops each problem that yields to another at its place.
func (ps Problems) withoutYielded() Problems {
	at := map[token.Position]bool{}
	for _, p := range ps {
		if !p.yields {
			at[p.Pos] = true
		}
	}
	return slices.DeleteFunc(slices.Clone(ps), func(p Problem) bool { return p.yields && at[p.Pos] })
}

// sorted returns the problems by file, line and column, each once.
func (ps Problems) sorted() Problems {
	out := slices.Clone(ps)
	slices.SortStableFunc(out, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Pos.Filename, b.Pos.Filename), cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return slices.CompactFunc(out, func(a, b Problem) bool { return a.String() == b.String() })
}
