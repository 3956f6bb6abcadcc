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

// TestLoad_SpacedAnnotationOnTheInterfaceIsReported: "// warren:grpc"
// would silently leave gRPC out.
func TestLoad_SpacedAnnotationOnTheInterfaceIsReported(t *testing.T) {
	src := "package things\n\nimport \"context\"\n\n// warren:grpc\ntype Service interface {\n\tGet(ctx context.Context, req R) (R, error)\n}\n\ntype R struct{}\n"
	_, err := Load("services/things", "things", module, map[string][]byte{"service.go": []byte(src)}, nil)
	if err == nil || !strings.Contains(err.Error(), `service.go:5: "// warren:grpc" is not read as an annotation`) {
		t.Fatalf("err = %v", err)
	}
}
