package gen

import (
	"errors"
	"strings"
	"testing"
)

// TestLoad_EveryProblemInOneRun: an unknown annotation on the interface
// does not hide the methods' problems, and a method with a bad core
// annotation still has its route checked, so one run lists everything.
func TestLoad_EveryProblemInOneRun(t *testing.T) {
	src := `package things

import "context"

//warren:grcp
type Service interface {
	//warren:idempotant
	//warren:http POTS /x
	Get(ctx context.Context, req GetRequest) (GetResponse, error)
	Bad(req GetRequest) (GetResponse, error)
	// warren:noretry
	Put(ctx context.Context, req GetRequest) (GetResponse, error)
}

type GetRequest struct{}

type GetResponse struct{}
`
	_, err := Load("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
	var probs Problems
	if !errors.As(err, &probs) {
		t.Fatalf("err = %v, want Problems", err)
	}
	got := probs.Error()
	for _, want := range []string{
		`services/things/service.go:5: unknown annotation "//warren:grcp" on the Service interface`,
		`services/things/service.go:7: Get: unknown annotation "//warren:idempotant"`,
		`services/things/service.go:8: Get: HTTP method "POTS": want one of GET`,
		`services/things/service.go:10: Bad: takes 1 parameter and returns 2 results`,
		`services/things/service.go:11: Put: "// warren:noretry" is not read as an annotation: it has a space after //; write "//warren:noretry"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
}

// TestLoad_ContradictoryRetryAnnotationsAreRefused: //warren:noretry
// beside //warren:idempotent or //warren:keyed says both "retry" and
// "never retry" (docs/svcgen.md: "Not with //warren:idempotent"), so gen
// refuses the method, naming it, rather than pick one.
// Mutation audit M6: kills dropping either check in load.go.
func TestLoad_ContradictoryRetryAnnotationsAreRefused(t *testing.T) {
	for ann, want := range map[string]string{
		"//warren:idempotent": "services/things/service.go:6: Put: both //warren:idempotent and //warren:noretry",
		"//warren:keyed":      "services/things/service.go:6: Put: both //warren:keyed and //warren:noretry",
	} {
		src := "package things\n\nimport \"context\"\n\ntype Service interface {\n\t" + ann + "\n\t//warren:noretry\n\tPut(ctx context.Context, req R) (R, error)\n}\n\ntype R struct{}\n"
		_, err := Load("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s with //warren:noretry: err = %v; want %q", ann, err, want)
		}
	}
}

// TestLoad_SpacedAnnotationOnTheInterfaceIsReported: "// warren:grpc"
// would silently leave gRPC out.
func TestLoad_SpacedAnnotationOnTheInterfaceIsReported(t *testing.T) {
	src := "package things\n\nimport \"context\"\n\n// warren:grpc\ntype Service interface {\n\tGet(ctx context.Context, req R) (R, error)\n}\n\ntype R struct{}\n"
	_, err := Load("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
	if err == nil || !strings.Contains(err.Error(), `service.go:5: "// warren:grpc" is not read as an annotation`) {
		t.Fatalf("err = %v", err)
	}
}

// TestGenerate_AppendsInTheFilesLineEndings: a stub appended to a CRLF
// service.go is CRLF too, not LF lines in a CRLF file.
func TestGenerate_AppendsInTheFilesLineEndings(t *testing.T) {
	src := "package things\n\nimport \"context\"\n\ntype Service interface {\n\tGet(ctx context.Context, req GetRequest) (GetResponse, error)\n}\n\ntype S struct{}\n\nvar _ Service = (*S)(nil)\n"
	for _, nl := range []string{"\n", "\r\n"} {
		in := strings.ReplaceAll(src, "\n", nl)
		out, err := Generate("services/things", "things", module, map[string][]byte{"service.go": []byte(in)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := string(out.Files["service.go"])
		if !strings.HasPrefix(got, in) || !strings.Contains(got, "func (s *S) Get(") {
			t.Fatalf("%q: service.go is not the old content and a Get stub:\n%q", nl, got)
		}
		if lf, crlf := strings.Count(got, "\n"), strings.Count(got, "\r\n"); nl == "\r\n" && lf != crlf || nl == "\n" && crlf != 0 {
			t.Errorf("%q: %d line feeds, %d of them CRLF; want every line ending %q:\n%q", nl, lf, crlf, nl, got)
		}
		// A second run appends nothing: the CRLF file reads back the same.
		out2, err := Generate("services/things", "things", module, map[string][]byte{"service.go": out.Files["service.go"]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(out2.Appended) != 0 {
			t.Errorf("%q: second run appends %q", nl, out2.Appended)
		}
	}
}
