package gen

import (
	"errors"
	"strings"
	"testing"
)

// TestGenerate_MisleadingMessagesSayWhatIsWrong: three mistakes got a
// message about something else (report j53c 11): a misspelt field type
// was "a type with no protobuf counterpart" (or a path parameter of the
// wrong kind, or, in an HTTP-only service, the compiler's word after the
// files were written); `(error, Resp)` was told to wrap error in a
// struct; a generic type was "no protobuf counterpart". Each is now one
// problem that names the mistake and what to do, and nothing is written.
func TestGenerate_MisleadingMessagesSayWhatIsWrong(t *testing.T) {
	const get = "Get(ctx context.Context, req GetRequest) (Thing, error)"
	for _, c := range []struct {
		name, methods, extra string
		grpc                 bool
		want                 string // the one problem, whole
		not                  string // what it must not say
	}{
		{"undefined field type, gRPC", get, "type Named struct {\n\tName Strang `json:\"name\"`\n}\n\ntype Uses struct{ N Named }", true,
			"services/things/service.go:14: Get: undefined: Strang (in field GetRequest.Name): no type of that name is declared in this package, nor is it a predeclared Go type; correct the name (a typo?) or declare the type",
			"protobuf"},
		{"undefined field type, HTTP", get, "", false,
			"services/things/service.go:13: Get: undefined: Strang (in field GetRequest.Name): no type of that name is declared in this package",
			"JSON"},
		{"undefined path parameter type", "//warren:http GET /things/{name}\n\t" + get, "", false,
			"services/things/service.go:14: Get: undefined: Strang (in field GetRequest.Name)",
			"path parameter"},
		{"undefined element in a nested type", get, "type Line struct {\n\tTags []*Tagg `json:\"tags\"`\n}", true,
			"undefined: Tagg (in field Line.Tags)", "protobuf"},
		{"results swapped", "Get(ctx context.Context, req GetRequest) (error, Thing)", "", false,
			"services/things/service.go:9: Get: the results are swapped: the error comes last, (Thing, error); want `Name(ctx context.Context, req Req) (Resp, error)`",
			"wrap"},
		{"generic field type, gRPC", get, "type Page[T any] struct {\n\tItems []T `json:\"items\"`\n}\n\ntype Line struct{ N int }", true,
			"services/things/service.go:14: Get: field GetRequest.Lines has type Page[Line], which svcgen cannot map to protobuf: Page[Line] is an instance of a generic type, and generic types are not mapped; declare a non-generic struct type with the fields Page[Line] has (type LinePage struct { … }) and use it",
			"no protobuf counterpart"},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(base, "METHODS", "\t"+c.methods, 1), "EXTRA", c.extra, 1)
			field := "\tName Strang `json:\"name\"`\n"
			if strings.Contains(c.name, "nested") {
				field = "\tLines []Line `json:\"lines\"`\n"
			}
			if strings.Contains(c.name, "generic") {
				field = "\tLines Page[Line] `json:\"lines\"`\n"
			}
			if c.name == "results swapped" {
				field = ""
			}
			src = strings.Replace(src, "type GetRequest struct {\n", "type GetRequest struct {\n"+field, 1)
			if c.grpc {
				src = strings.Replace(src, "type Service interface {", "//warren:grpc\ntype Service interface {", 1)
			}
			out, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
			var probs Problems
			if !errors.As(err, &probs) || out != nil {
				t.Fatalf("Generate = output %v, err %v; want problems and nothing to write\n%s", out != nil, err, src)
			}
			if len(probs) != 1 || !strings.Contains(probs[0].String(), c.want) || strings.Contains(probs[0].String(), c.not) {
				t.Fatalf("problems:\n%v\nwant one, containing %q and not %q", err, c.want, c.not)
			}
		})
	}
	// A type parameter is declared by its type, not undefined.
	src := strings.Replace(strings.Replace(base, "METHODS", "\t"+get, 1), "EXTRA", "type Page[T any] struct {\n\tItems []T `json:\"items\"`\n}", 1)
	src = strings.Replace(src, "type GetRequest struct {\n", "type GetRequest struct {\n\tP Page[Thing] `json:\"p\"`\n", 1)
	if _, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil); err != nil {
		t.Errorf("an HTTP service with a generic field: %v", err)
	}
}

// TestGenerate_ClientMethodsCarryTheInterfaceDocs: the generated client's
// methods said only "Get calls the Get endpoint." (report j53c 8, the
// Go-client half); they carry the Service method's doc comment, without
// its //warren: lines, a trailing comment when there is no leading one.
func TestGenerate_ClientMethodsCarryTheInterfaceDocs(t *testing.T) {
	methods := "// Get returns one thing by ID.\n\t//\n\t// It may be retried.\n\t//warren:http GET /things/{id}\n\tGet(ctx context.Context, req GetRequest) (Thing, error)\n" +
		"\tPut(ctx context.Context, req Thing) (Thing, error) // Put stores a thing.\n" +
		"\tDel(ctx context.Context, req GetRequest) (Thing, error)"
	src := strings.Replace(strings.Replace(base, "METHODS", "\t"+methods, 1), "EXTRA", "", 1)
	out, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := string(out.Files["client_gen.go"])
	for _, want := range []string{
		"\n// Get returns one thing by ID.\n//\n// It may be retried.\n//\n// The client calls the Get endpoint.\nfunc (c *Client) Get(",
		"\n// Put stores a thing.\n//\n// The client calls the Put endpoint.\nfunc (c *Client) Put(",
		"\n}\n\n// Del calls the Del endpoint.\nfunc (c *Client) Del(",
	} {
		if !strings.Contains(client, want) {
			t.Errorf("client_gen.go has no\n%s\n---\n%s", want, client)
		}
	}
	if strings.Contains(client, "warren:http") {
		t.Errorf("client_gen.go carries the //warren:http line:\n%s", client)
	}
}
