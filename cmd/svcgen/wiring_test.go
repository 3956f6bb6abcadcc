package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGen_ServiceThatGainsGRPCIsToldToServeItFromItsMain: main.go is the
// user's and gen never rewrites it, so a service that gains //warren:grpc
// after `svcgen new` would go on serving and registering HTTP only,
// silently. gen says what to change in the main, and leaves it as it is;
// a main that serves gRPC (as `svcgen new --grpc` writes it) gets no note.
func TestGen_ServiceThatGainsGRPCIsToldToServeItFromItsMain(t *testing.T) {
	p := absentServiceName(t)
	root := fakeRoot(t)
	linkBin(t, root)
	if code, out, errOut := runCLI(t, "new", p("payment"), "--root", root); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	dir := filepath.Join(root, "services", p("payment"))
	mainPath := filepath.Join(dir, "cmd", p("payment"), "main.go")
	mainBefore, err := os.ReadFile(mainPath)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "gen", p("payment"), "--no-check", "--root", root); code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s", code, out, errOut)
	} else if strings.Contains(errOut, "does not serve it") {
		t.Fatalf("gen of an HTTP-only service asks its main to serve gRPC:\n%s", errOut)
	}

	svc := filepath.Join(dir, "service.go")
	src, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	src = []byte(strings.Replace(string(src), "\ntype Service interface", "\n//\n//warren:grpc\ntype Service interface", 1))
	if err := os.WriteFile(svc, src, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "gen", p("payment"), "--no-check", "--root", root)
	if code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	rel := "services/" + p("payment") + "/cmd/" + p("payment") + "/main.go"
	for _, want := range []string{rel + " does not serve it", p("payment") + ".NewTransports(d, ", "bootstrap.WithSettings(&grpcSettings)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("gen's note lacks %q:\n%s", want, errOut)
		}
	}
	if after, _ := os.ReadFile(mainPath); string(after) != string(mainBefore) {
		t.Errorf("gen rewrote the user's main.go:\n%s", after)
	}

	if code, out, errOut := runCLI(t, "new", p("ledger"), "--grpc", "--root", root); code != 0 {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "gen", p("ledger"), "--no-check", "--root", root); code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s", code, out, errOut)
	} else if strings.Contains(errOut, "does not serve it") {
		t.Errorf("gen asks a main that serves gRPC to serve it:\n%s", errOut)
	}
}
