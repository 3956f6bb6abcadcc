package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGen_VerifyListsWhatIsOutOfDateAndWritesNothing: `svcgen gen --verify`
// (a CI step) exits 0 on an up-to-date service and 1, naming every file
// gen would change and writing none, once service.go moved on.
func TestGen_VerifyListsWhatIsOutOfDateAndWritesNothing(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	if code, out, errOut := runCLI(t, "gen", "--verify", "--root", root); code != exitOK || strings.TrimSpace(out) != "services/payment: up to date" {
		t.Fatalf("gen --verify on a fresh service: exit %d\n%s%s\nwant exit 0 and up to date", code, out, errOut)
	}
	addMethod(t, filepath.Join(root, "services", "payment", "service.go"),
		"\t//warren:http GET /payments/{id}\n\tStatus(ctx context.Context, req StatusRequest) (StatusResponse, error)")
	before := snapshot(t, root)
	code, out, errOut := runCLI(t, "gen", "payment", "--verify", "--root", root)
	if code != exitFailed {
		t.Fatalf("gen --verify after a new method: exit %d, want %d\n%s%s", code, exitFailed, out, errOut)
	}
	for _, want := range []string{"out of date with service.go", "gen` and commit what it writes",
		"services/payment/endpoint_gen.go", "services/payment/transport_gen.go", "services/payment/client_gen.go",
		"services/payment/service.go"} { // the stub gen would append
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	sameFiles(t, before, snapshot(t, root))

	if code, out, errOut := runCLI(t, "gen", "--verify", "--dry-run", "--root", root); code != exitUsage {
		t.Errorf("gen --verify --dry-run: exit %d, want %d (usage)\n%s%s", code, exitUsage, out, errOut)
	}
	if code, out, errOut := runCLI(t, "gen", "--root", root); code != exitOK {
		t.Fatalf("gen: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "gen", "--verify", "--root", root); code != exitOK {
		t.Fatalf("gen --verify after gen: exit %d\n%s%s\nwant 0", code, out, errOut)
	}
}

// TestGen_VerifyNeedsNoProtoc: on a gRPC service --verify runs no protoc
// (a CI image may lack it): a changed .proto is out of date by itself,
// and a missing .pb.go is named.
func TestGen_VerifyNeedsNoProtoc(t *testing.T) {
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
	t.Setenv("PATH", t.TempDir()) // protoc gone; its plugins stay in bin/
	if code, out, errOut := runCLI(t, "gen", name, "--verify", "--root", root); code != exitOK {
		t.Fatalf("gen --verify on a fresh gRPC service without protoc: exit %d\n%s%s", code, out, errOut)
	}

	dir := filepath.Join(root, "services", name)
	pb := filepath.Join(dir, name+"pb", name+".pb.go")
	b, err := os.ReadFile(pb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(pb); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "gen", name, "--verify", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "services/"+name+"/"+name+"pb/"+name+".pb.go (missing") {
		t.Fatalf("gen --verify with a .pb.go removed: exit %d\n%s%s\nwant 1 naming the file", code, out, errOut)
	}
	if err := os.WriteFile(pb, b, 0o644); err != nil {
		t.Fatal(err)
	}

	svc := filepath.Join(dir, "service.go")
	src, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "type HelloRequest struct {", "type HelloRequest struct {\n\tLocale string `json:\"locale\"`", 1)
	if edited == string(src) {
		t.Fatalf("no HelloRequest in service.go:\n%s", src)
	}
	if err := os.WriteFile(svc, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir) // root holds the bin symlink
	code, out, errOut = runCLI(t, "gen", name, "--verify", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "services/"+name+"/"+name+"pb/"+name+".proto") || strings.Contains(errOut, "protoc is not") {
		t.Fatalf("gen --verify after a new request field, no protoc: exit %d\n%s%s\nwant 1 naming the .proto, protoc not run", code, out, errOut)
	}
	sameFiles(t, before, snapshot(t, dir))
}
