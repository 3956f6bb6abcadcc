package gen

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// base is a valid service; each case replaces METHODS (and may add
// declarations at EXTRA).
const base = `package things

import (
	"context"
	"time"
)

type Service interface {
METHODS
}

type GetRequest struct {
	ID string ` + "`json:\"id\"`" + `
}

type Thing struct {
	ID      string    ` + "`json:\"id\"`" + `
	Created time.Time ` + "`json:\"created\"`" + `
}

EXTRA
`

func TestGenerate_BadInputNamesFileLineMethodAndWritesNothing(t *testing.T) {
	cases := []struct {
		name, methods, extra string
		mark                 string // the reported line contains this
		want                 string // the message contains this
	}{
		{"pointer request", "Get(ctx context.Context, req *GetRequest) (Thing, error)", "", "*GetRequest",
			"Get: request type is the pointer *GetRequest; use the struct type GetRequest itself"},
		{"no context", "Get(req GetRequest) (Thing, error)", "", "Get(req",
			"Get: takes 1 parameter and returns 2 results; want `Name(ctx context.Context, req Req) (Resp, error)`"},
		{"first parameter not a context", "Get(id string, req GetRequest) (Thing, error)", "", "Get(id",
			"Get: first parameter is string, not context.Context"},
		{"second result not error", "Get(ctx context.Context, req GetRequest) (Thing, bool)", "", "Get(ctx",
			"Get: second result is bool, not error"},
		{"request not a struct", "Get(ctx context.Context, req Name) (Thing, error)", "type Name string", "Get(ctx",
			"Get: request type Name is not a struct type (it is string)"},
		{"predeclared response", "Get(ctx context.Context, req GetRequest) (string, error)", "", "Get(ctx",
			"Get: response type string is not a struct; wrap it: `type GetResponse struct { … }`"},
		{"foreign response", "Get(ctx context.Context, req GetRequest) (time.Time, error)", "", "Get(ctx",
			"Get: response type time.Time is declared in another package"},
		{"variadic", "Get(ctx context.Context, req ...GetRequest) (Thing, error)", "", "Get(ctx",
			"Get: request type ...GetRequest is not a named struct type"},
		{"path parameter without field", "//warren:http GET /things/{name}\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "type GetRequest",
			"Get: path parameter {name} matches no field of GetRequest; add a field with the json tag \"name\""},
		{"path parameter of a bad type", "//warren:http GET /things/{at}\n\tGet(ctx context.Context, req AtRequest) (Thing, error)", "type AtRequest struct {\n\tAt bool `json:\"at\"`\n}", "At bool",
			"Get: path parameter {at} binds to AtRequest.At of type bool; a path parameter must be a string or an int"},
		{"unknown annotation", "//warren:htp GET /x\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "warren:htp",
			"Get: unknown annotation \"//warren:htp GET /x\""},
		{"bad HTTP method", "//warren:http FETCH /x\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "FETCH",
			"Get: HTTP method \"FETCH\": want one of GET, POST, PUT, PATCH, DELETE"},
		{"error status", "//warren:http POST /x 404\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "404",
			"Get: status \"404\": want a success status 200…299"},
		{"no-body status", "//warren:http POST /x 204\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "204",
			"Get: status 204 allows no body"},
		{"path without slash", "//warren:http GET things\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "GET things",
			"Get: path \"things\": must start with /"},
		{"multi-segment wildcard", "//warren:http GET /files/{path...}\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "path...",
			"multi-segment wildcards are not supported"},
		{"two routes", "//warren:http GET /a\n\t//warren:http GET /b\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "GET /b",
			"Get: a second //warren:http line"},
		{"conflicting routes", "//warren:http POST /x\n\tA(ctx context.Context, req GetRequest) (Thing, error)\n\t//warren:http POST /x  \n\tB(ctx context.Context, req GetRequest) (Thing, error)", "", "POST /x  ",
			"B: route POST /x conflicts with A's route POST /x: the same route twice; give one of them a different //warren:http path"},
		{"overlapping routes", "//warren:http GET /a/{x}\n\tA(ctx context.Context, req GetRequest) (Thing, error)\n\t//warren:http GET /{y}/b\n\tB(ctx context.Context, req GetRequest) (Thing, error)", "", "GET /{y}/b",
			"B: route GET /{y}/b conflicts with A's route GET /a/{x}: GET /{y}/b and GET /a/{x} both match some paths, like \"/a/b\"; but neither is more specific than the other"},
		{"GET with a struct field", "//warren:http GET /things\n\tList(ctx context.Context, req ListRequest) (Thing, error)", "type ListRequest struct {\n\tSince time.Time `json:\"since\"`\n}", "Since time",
			"List: field ListRequest.Since has type time.Time, which cannot travel in a query string"},
		{"GET with an embedded struct", "//warren:http GET /things\n\tList(ctx context.Context, req ListRequest) (Thing, error)", "type ListRequest struct {\n\tGetRequest\n}", "\tGetRequest",
			"List: ListRequest embeds GetRequest"},
		{"embedded interface", "interface{ Ping() }\n\tGet(ctx context.Context, req GetRequest) (Thing, error)", "", "Ping()",
			"embedded interface interface{Ping()}: list the methods in Service itself"},
		{"unexported method", "get(ctx context.Context, req GetRequest) (Thing, error)", "", "get(ctx",
			"get: unexported method"},
		{"Close", "Close(ctx context.Context, req GetRequest) (Thing, error)", "", "Close(ctx",
			"Close: the generated Client has a Close method of its own"},
		{"user declares a generated name", "Get(ctx context.Context, req GetRequest) (Thing, error)", "type Client struct{}", "type Client",
			"Client is declared here, but svcgen generates Client in a *_gen.go file; rename yours"},
		{"syntax error", "Get(ctx context.Context, req GetRequest) (Thing, error", "", "Get(ctx",
			"syntax error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(base, "METHODS", "\t"+c.methods, 1), "EXTRA", c.extra, 1)
			line := 0
			for i, l := range strings.Split(src, "\n") {
				if strings.Contains(l, c.mark) {
					line = i + 1
					break
				}
			}
			_, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
			var probs Problems
			if !errors.As(err, &probs) {
				t.Fatalf("err = %v, want Problems", err)
			}
			prefix := fmt.Sprintf("services/things/service.go:%d: ", line)
			for _, p := range probs {
				if strings.HasPrefix(p.String(), prefix) && strings.Contains(p.String(), c.want) {
					return
				}
			}
			t.Fatalf("problems:\n%v\nwant one starting %q containing %q", err, prefix, c.want)
		})
	}
}

func TestGenerate_RefusesToOverwriteAFileItDidNotWrite(t *testing.T) {
	src := strings.Replace(strings.Replace(base, "METHODS", "\tGet(ctx context.Context, req GetRequest) (Thing, error)", 1), "EXTRA", "", 1)
	_, err := Generate("services/things", "things", module, map[string][]byte{
		"service.go":    []byte(src),
		"client_gen.go": []byte("package things\n\n// my own client\n"),
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "services/things/client_gen.go:1: this file does not start with") {
		t.Fatalf("err = %v", err)
	}
}

func TestGenerate_NoServiceInterfaceSaysWhatIsMissing(t *testing.T) {
	_, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte("package things\n")}, nil)
	if err == nil || !strings.Contains(err.Error(), "no `type Service interface { … }` found") {
		t.Fatalf("err = %v", err)
	}
}

func TestPackageName(t *testing.T) {
	for _, c := range []struct{ name, pkg, err string }{
		{"payment", "payment", ""},
		{"fraud-check", "fraudcheck", ""},
		{"v2", "v2", ""},
		{"Payment", "", "is not valid"},
		{"9lives", "", "is not valid"},
		{"pay_ment", "", "is not valid"},
		{"my-", "", "ends with a dash"},
		{"a--b", "", "two dashes in a row"},
		{"-a", "", "is not valid"},
		{strings.Repeat("a", 64), "", "is not valid"},
		{strings.Repeat("a", 63), strings.Repeat("a", 63), ""},
		{"", "", "is not valid"},
		{"framework", "", "is reserved"},
		{"internal", "", "is reserved"},
		{"func", "", "Go keyword"},
		{"go-to", "", "maps to Go package goto, which is a Go keyword"},
		{"client", "", "clashes with framework/client"},
		{"http", "", "clashes with net/http"},
		{"string", "", "predeclared"},
		{"main", "", "cannot be imported"},
	} {
		pkg, err := PackageName(c.name)
		if pkg != c.pkg || (c.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("PackageName(%q) = %q, %v; want %q, error containing %q", c.name, pkg, err, c.pkg, c.err)
		}
	}
}

func TestKebab(t *testing.T) {
	for in, want := range map[string]string{
		"Create": "create", "GetBalance": "get-balance", "CreateHTTPServer": "create-http-server",
		"GetHTTPStatus": "get-http-status", "V2Sync": "v2-sync", "ID": "id", "UserID": "user-id",
	} {
		if got := Kebab(in); got != want {
			t.Errorf("Kebab(%q) = %q, want %q", in, got, want)
		}
	}
}
