package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGen_AMessageNamedLikeAMethodCompilesWithProtoc: a method and a
// type of the same name (Charge, and GetCharge returning a Charge) is
// plain Go, but in a .proto a name in an rpc line is looked up from
// inside the service first, where Charge is the rpc, and protoc refused
// the file ("Charge" is not a message type) that svcgen had written.
// Such a type is written fully qualified in the rpc lines, and gen's
// protoc run passes.
func TestGen_AMessageNamedLikeAMethodCompilesWithProtoc(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatalf("protoc not on PATH (make protoc): %v", err)
	}
	p := absentServiceName(t)
	root := fakeRoot(t)
	linkBin(t, root)
	name := p("ledger")
	if code, out, errOut := runCLI(t, "new", name, "--grpc", "--root", root); code != 0 {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	dir := filepath.Join(root, "services", name)
	addMethod(t, filepath.Join(dir, "service.go"), strings.Join([]string{
		"\tCharge(ctx context.Context, req ChargeRequest) (ChargeResponse, error)",
		"\tGetCharge(ctx context.Context, req GetChargeRequest) (Charge, error)",
		"\tBalance(ctx context.Context, req Balance) (BalanceResponse, error)",
	}, "\n"))
	code, out, errOut := runCLI(t, "gen", name, "--no-check", "--root", root)
	if code != 0 {
		t.Fatalf("svcgen gen: exit %d\n%s%s", code, out, errOut)
	}
	pkg := strings.ReplaceAll(name, "-", "")
	proto, err := os.ReadFile(filepath.Join(dir, pkg+"pb", pkg+".proto"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rpc Charge(ChargeRequest) returns (ChargeResponse)",
		"rpc GetCharge(GetChargeRequest) returns (." + pkg + ".v1.Charge)",
		"rpc Balance(." + pkg + ".v1.Balance) returns (BalanceResponse)",
		"\nmessage Charge {",
		"\nmessage Balance {",
	} {
		if !strings.Contains(string(proto), want) {
			t.Errorf("the .proto lacks %q:\n%s", want, proto)
		}
	}
	for _, f := range []string{pkg + ".pb.go", pkg + "_grpc.pb.go"} {
		if _, err := os.Stat(filepath.Join(dir, pkg+"pb", f)); err != nil {
			t.Errorf("protoc's output: %v", err)
		}
	}
	if code, out, errOut := runCLI(t, "gen", name, "--no-check", "--root", root); code != 0 || !strings.Contains(out, "up to date") {
		t.Errorf("a second gen: exit %d\n%s%s", code, out, errOut)
	}
}
