package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The tests in this file guard gen's modes and init's --replace default
// as docs/svcgen.md states them (mutation audit M6): each fails when the
// line behind the claim is removed.

// runIn runs svcgen with the working directory wd and typecheck as gen's
// compile step.
func runIn(wd string, typecheck func(string, []string, map[string]bool) error, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	c := &cli{stdout: &out, stderr: &errb, wd: wd, lookPath: exec.LookPath, typecheck: typecheck}
	code := c.run(args)
	return code, out.String(), errb.String()
}

// TestGen_DryRunWritesNothing: `gen --dry-run` prints each file it would
// change and the text it would append, and writes nothing. Kills: the
// dry-run guard around commit(writes) removed.
func TestGen_DryRunWritesNothing(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	addMethod(t, filepath.Join(root, "services", "payment", "service.go"),
		"\tRefund(ctx context.Context, req RefundRequest) (RefundResponse, error)")
	before := snapshot(t, root)
	code, out, errOut := runCLI(t, "gen", "payment", "--dry-run", "--root", root)
	if code != exitOK {
		t.Fatalf("gen --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"services/payment: would write services/payment/service.go: appended for you to fill in:",
		"func (s *PaymentService) Refund(",
		"services/payment: would write services/payment/endpoint_gen.go (update)",
		"dry run: nothing was written",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gen --dry-run output lacks %q:\n%s", want, out)
		}
	}
	sameFiles(t, before, snapshot(t, root))
}

// TestGen_ChecksWhatItWroteUnlessNoCheckAndDriftExitsOne: after writing,
// gen compiles the services it wrote; a service that no longer compiles
// is exit 1 with the message, and --no-check skips the step. Kills: the
// errDrift branch answering 0, and --no-check ignored.
func TestGen_ChecksWhatItWroteUnlessNoCheckAndDriftExitsOne(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	var checked [][]string
	drift := func(r string, rels []string, _ map[string]bool) error {
		if r != root {
			t.Errorf("typecheck root %q, want %q", r, root)
		}
		checked = append(checked, rels)
		return errDrift{"the generated code was written, but the service does not compile:\n  services/payment/service.go:50:17: does not implement Service"}
	}
	code, out, errOut := runIn(root, drift, "gen", "payment", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "svcgen gen: the generated code was written, but the service does not compile:") {
		t.Errorf("gen with a service that does not compile: exit %d, want %d with the compiler's report\n%s%s", code, exitFailed, out, errOut)
	}
	if len(checked) != 1 || !slices.Equal(checked[0], []string{"services/payment"}) {
		t.Errorf("typecheck calls %q, want one for [services/payment]", checked)
	}
	checked = nil
	code, out, errOut = runIn(root, drift, "gen", "payment", "--no-check", "--root", root)
	if code != exitOK || len(checked) != 0 {
		t.Errorf("gen --no-check: exit %d, typecheck calls %q; want exit 0 and none\n%s%s", code, checked, out, errOut)
	}
}

// TestGen_InsideAServiceDirectoryGensThatServiceOnly: with no argument,
// gen works on the service of the working directory (even from a
// subdirectory of it), and on every service elsewhere. Kills: the
// working-directory case of targets skipped.
func TestGen_InsideAServiceDirectoryGensThatServiceOnly(t *testing.T) {
	root := fakeRoot(t)
	for _, name := range []string{"payment", "ledger"} {
		if code, _, errOut := runCLI(t, "new", name, "--root", root); code != exitOK {
			t.Fatalf("new %s: exit %d: %s", name, code, errOut)
		}
		addMethod(t, filepath.Join(root, "services", name, "service.go"),
			"\tRefund(ctx context.Context, req RefundRequest) (RefundResponse, error)")
	}
	ledger := snapshot(t, filepath.Join(root, "services", "ledger"))
	wd := filepath.Join(root, "services", "payment", "cmd", "payment")
	code, out, errOut := runIn(wd, nil, "gen")
	if code != exitOK || !strings.Contains(out, "services/payment: wrote services/payment/service.go: appended") {
		t.Fatalf("gen in services/payment/cmd/payment: exit %d\n%s%s\nwant payment's stub appended", code, out, errOut)
	}
	if strings.Contains(out, "ledger") {
		t.Errorf("gen in payment's directory touched ledger:\n%s", out)
	}
	sameFiles(t, ledger, snapshot(t, filepath.Join(root, "services", "ledger")))
	code, out, errOut = runIn(root, nil, "gen")
	if code != exitOK || !strings.Contains(out, "services/ledger: wrote services/ledger/service.go: appended") || !strings.Contains(out, "services/payment: up to date") {
		t.Errorf("gen at the root: exit %d\n%s%s\nwant ledger's stub appended and payment up to date", code, out, errOut)
	}
}

// TestInit_ReplaceWithoutAVersionRequiresThePlaceholder: `init --replace
// PATH` without --warren requires the placeholder version the replace
// directive stands in for (a checkout-built svcgen knows no version of
// its own, and would refuse). Kills: the placeholder default removed.
func TestInit_ReplaceWithoutAVersionRequiresThePlaceholder(t *testing.T) {
	checkout := fakeRoot(t)
	dir := filepath.Join(t.TempDir(), "shop")
	code, out, errOut := runCLI(t, "init", "example.com/shop", "--replace", checkout, "--dir", dir)
	if code != exitOK {
		t.Fatalf("init --replace: exit %d\n%s%s", code, out, errOut)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"require github.com/warren-mesh/warren v0.0.0-00010101000000-000000000000\n",
		"replace github.com/warren-mesh/warren => " + checkout + "\n",
	} {
		if !strings.Contains(string(gomod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
}

// TestGen_RunsProtocOnlyWhenTheProtoChangedOrForced: plain `svcgen gen`
// needs no protoc while the .proto is unchanged and its .pb.go files are
// there; a changed .proto, or --protoc, runs it (and without protoc, fails
// naming it and writes nothing). A file in NAMEpb/ that svcgen did not
// write is never overwritten. Mutation audit M6: kills a changed .proto
// not triggering protoc, --protoc ignored, and the "not written by svcgen"
// check in extraFiles removed.
func TestGen_RunsProtocOnlyWhenTheProtoChangedOrForced(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatalf("protoc not on PATH (make protoc): %v", err)
	}
	root := fakeRoot(t)
	linkBin(t, root)
	if code, out, errOut := runCLI(t, "new", "ledger", "--grpc", "--root", root); code != exitOK {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	dir := filepath.Join(root, "services", "ledger")

	// A .proto of the user's own in NAMEpb/ is refused, left as it is.
	proto := filepath.Join(dir, "ledgerpb", "ledger.proto")
	orig, err := os.ReadFile(proto)
	if err != nil {
		t.Fatal(err)
	}
	mine := "syntax = \"proto3\";\n// mine\n" + string(orig)
	if err := os.WriteFile(proto, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "gen", "ledger", "--root", root)
	if got, _ := os.ReadFile(proto); code != exitFailed || !strings.Contains(errOut, "services/ledger/ledgerpb/ledger.proto:1: this file was not written by svcgen") || string(got) != mine {
		t.Errorf("gen over a .proto svcgen did not write: exit %d\n%s%s\nwant 1 naming the file, the file untouched", code, out, errOut)
	}
	if err := os.WriteFile(proto, orig, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Setenv("PATH", t.TempDir()) // protoc gone; its plugins stay in bin/
	if code, out, errOut := runCLI(t, "gen", "ledger", "--root", root); code != exitOK || strings.TrimSpace(out) != "services/ledger: up to date" {
		t.Fatalf("gen of an unchanged gRPC service without protoc: exit %d\n%s%s\nwant 0, up to date", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "gen", "ledger", "--protoc", "--root", root); code != exitFailed || !strings.Contains(errOut, "protoc") {
		t.Errorf("gen --protoc without protoc: exit %d\n%s%s\nwant 1 naming protoc", code, out, errOut)
	}
	svc := filepath.Join(dir, "service.go")
	src, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "type HelloRequest struct {", "type HelloRequest struct {\n\tLocale string `json:\"locale\"`", 1)
	if err := os.WriteFile(svc, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if code, out, errOut := runCLI(t, "gen", "ledger", "--root", root); code != exitFailed || !strings.Contains(errOut, "protoc") {
		t.Errorf("gen of a changed .proto without protoc: exit %d\n%s%s\nwant 1 naming protoc", code, out, errOut)
	}
	sameFiles(t, before, snapshot(t, dir))
}

// TestNew_InAModuleOfYourOwnTheHintRunsGoModTidyFirst: the new service
// imports packages the user's module does not require yet, so in a module
// other than Warren's the first step `svcgen new` names is `go mod tidy`
// (docs/svcgen.md's own-module steps); in Warren's own module there is
// nothing to tidy. Mutation audit M6: kills the tidy line dropped.
func TestNew_InAModuleOfYourOwnTheHintRunsGoModTidyFirst(t *testing.T) {
	own := t.TempDir()
	if err := os.WriteFile(filepath.Join(own, "go.mod"), []byte("module example.com/shop\n\ngo 1.26.8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for root, tidy := range map[string]bool{own: true, fakeRoot(t): false} {
		code, out, errOut := runCLI(t, "new", "payment", "--root", root)
		if code != exitOK {
			t.Fatalf("new in %s: exit %d\n%s%s", root, code, out, errOut)
		}
		if got := strings.Contains(out, "Next:\n  go mod tidy\n  go test ./services/payment/...\n"); got != tidy {
			t.Errorf("new in a module (own %v): the hint runs go mod tidy first: %v, want %v\n%s", tidy, got, tidy, out)
		}
	}
}
