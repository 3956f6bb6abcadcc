package gen

import (
	"errors"
	"strings"
	"testing"
)

// grpcThings is a //warren:grpc service whose Thing has the fields given.
func grpcThings(fields, extra string) map[string][]byte {
	return map[string][]byte{"service.go": []byte(`package things

import "context"

//warren:grpc
type Service interface {
	Put(ctx context.Context, req Thing) (Thing, error)
}

type Thing struct {
` + fields + `
}

` + extra + "\n")}
}

// TestGRPC_UnexportedStructFieldTypeIsRefusedNamingTheField: protoc-gen-go
// exports every message type, so a field of an unexported struct type
// (bin) would give grpc_gen.go a thingspb.bin that does not exist; it is
// refused before anything is written, naming the field.
func TestGRPC_UnexportedStructFieldTypeIsRefusedNamingTheField(t *testing.T) {
	for _, c := range []struct{ name, field string }{
		{"value", "Bin bin `json:\"bin\"`"},
		{"pointer", "Bin *bin `json:\"bin\"`"},
		{"slice", "Bin []bin `json:\"bin\"`"},
		{"map of pointers", "Bin map[string]*bin `json:\"bin\"`"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := Generate("services/things", "things", module, grpcThings(c.field, "type bin struct {\n\tCode string `json:\"code\"`\n}"), nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("Generate: %v (output %v), want problems", err, out != nil)
			}
			if msg := err.Error(); !strings.Contains(msg, "field Thing.Bin has type") || !strings.Contains(msg, "bin is an unexported struct type") {
				t.Errorf("the problem does not name the field and say why:\n%s", msg)
			}
		})
	}
}

// TestGRPC_FieldNamesFollowProtocGenGo: the Go names grpc_gen.go uses for
// message fields are protoc-gen-go's, which appends "_" to a name whose
// field or getter a field before it (or a method of every message) took.
func TestGRPC_FieldNamesFollowProtocGenGo(t *testing.T) {
	fields := "Message string `json:\"message\"`\n" +
		"GetMessage string `json:\"get_message\"`\n" +
		"GetX string `json:\"get_x\"`\n" +
		"X string `json:\"x\"`\n" +
		"Reset string `json:\"reset\"`\n" +
		"Plain string `json:\"plain\"`"
	out, err := Generate("services/things", "things", module, grpcThings(fields, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	code := string(out.Files["grpc_gen.go"])
	for _, want := range []string{"Message: v.Message,", "GetMessage_: v.GetMessage,", "GetMessage: m.GetGetMessage_(),",
		"GetX: v.GetX,", "X_: v.X,", "X: m.GetX_(),", "Reset_: v.Reset,", "Plain: v.Plain,"} {
		if !strings.Contains(strings.Join(strings.Fields(code), " "), want) {
			t.Errorf("grpc_gen.go lacks %q:\n%s", want, code)
		}
	}
}

// TestGRPC_ProtoReflectFieldIsRefused: protoc-gen-go does not rename a
// field whose Go name is ProtoReflect, the method of every message, so
// its output would not compile; svcgen refuses the field up front.
func TestGRPC_ProtoReflectFieldIsRefused(t *testing.T) {
	_, err := Generate("services/things", "things", module, grpcThings("Reflect string `json:\"protoReflect\"`", ""), nil)
	var probs Problems
	if !errors.As(err, &probs) || !strings.Contains(err.Error(), "field Thing.Reflect: its protobuf field proto_reflect becomes the Go field ProtoReflect") {
		t.Fatalf("Generate: %v, want the field refused", err)
	}
}

// A type svcgen cannot map is named once, with every method that reaches
// it (report j45b: only the first method was named), also through other
// messages (List reaches Part through Thing).
func TestGRPC_AProblemNamesEveryMethodThatReachesItsType(t *testing.T) {
	src := map[string][]byte{"service.go": []byte(`package things

import "context"

//warren:grpc
type Service interface {
	Put(ctx context.Context, req Thing) (Thing, error)
	List(ctx context.Context, req ListRequest) (ListResponse, error)
	Ping(ctx context.Context, req PingRequest) (PingResponse, error)
}

type Thing struct {
	Part Part ` + "`json:\"part\"`" + `
}

type Part struct {
	Bad [3]int ` + "`json:\"bad\"`" + `
}

type ListRequest struct{}

type ListResponse struct {
	Things []Thing ` + "`json:\"things\"`" + `
}

type PingRequest struct{}

type PingResponse struct{}
`)}
	_, err := Generate("services/things", "things", module, src, nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("Generate: %v, want problems", err)
	}
	var bad []Problem
	for _, p := range probs {
		if strings.Contains(p.Msg, "field Part.Bad") {
			bad = append(bad, p)
		}
	}
	if len(bad) != 1 || bad[0].Method != "Put, List" {
		t.Fatalf("problems of Part.Bad: %+v, want one named for \"Put, List\"\n%s", bad, err)
	}
}

// TestGRPC_GeneratedTestRoundTripsEveryMessage: grpc_gen_test.go, which
// gen rewrites with grpc_gen.go, round-trips every message type (nested
// ones too) through the conversions, so a field added without a gen fails
// `go test` (report j50b 3; the e2e test runs it). It is one of the files
// gen owns, so one the user wrote under that name is not overwritten.
func TestGRPC_GeneratedTestRoundTripsEveryMessage(t *testing.T) {
	files := grpcThings("Part Part `json:\"part\"`", "type Part struct {\n\tN int `json:\"n\"`\n}")
	out, err := Generate("services/things", "things", module, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	code := string(out.Files["grpc_gen_test.go"])
	for _, want := range []string{"// Code generated by svcgen. DO NOT EDIT.", "package things\n", `"github.com/warren-mesh/warren/framework/svcgentest"`,
		"svcgentest.RoundTrip(t, toPBThing, fromPBThing)", "svcgentest.RoundTrip(t, toPBPart, fromPBPart)"} {
		if !strings.Contains(code, want) {
			t.Errorf("grpc_gen_test.go lacks %q:\n%s", want, code)
		}
	}
	files["grpc_gen_test.go"] = []byte("package things\n")
	if _, err := Generate("services/things", "things", module, files, nil); err == nil || !strings.Contains(err.Error(), "grpc_gen_test.go:1: this file does not start with") {
		t.Errorf("a grpc_gen_test.go of the user's: err = %v, want it refused", err)
	}
}
