package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs svcgen with args and returns the exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// fakeRoot is a repository with a go.mod and nothing else: enough for
// everything svcgen does short of compiling.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module github.com/warren-mesh/warren\n\ngo 1.26.8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// snapshot returns every file under dir by relative path.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return files
}

func sameFiles(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s was removed", p)
		} else if a != b {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s was created", p)
		}
	}
}

func TestHelp_EveryCommandHasOneAndExitsZero(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"new", "--help"}, {"gen", "--help"}, {"gen", "-h"}, {"list", "--help"}, {"help", "gen"}, {"help", "new"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "svcgen") || strings.Count(out, "Usage") != 1 {
			t.Errorf("svcgen %v: exit %d, output %q; want exit 0 and the usage once", args, code, out)
		}
	}
}

func TestCommandLineMistakesExitTwoAndSayWhat(t *testing.T) {
	root := fakeRoot(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "Usage:"},
		{[]string{"create", "x"}, `unknown command "create"`},
		{[]string{"new"}, "missing the service name"},
		{[]string{"new", "a", "b"}, "one service at a time"},
		{[]string{"new", "pay", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"new", "pay", "--registry", "zookeeper"}, `--registry "zookeeper": want etcd or consul`},
		{[]string{"new", "pay", "--port", "70000"}, "--port 70000"},
		{[]string{"new", "pay", "--methods", "Close"}, "the generated Client has a Close method"},
		{[]string{"new", "pay", "--methods", "a-b"}, `method "a-b" is not a Go identifier`},
		{[]string{"new", "pay", "--methods", "hello"}, "Hello is listed twice"},
		{[]string{"new", "Payment"}, `service name "Payment" is not valid`},
		{[]string{"new", "framework"}, `service name "framework" is reserved`},
		{[]string{"new", "internal"}, `service name "internal" is reserved`},
		{[]string{"new", "go-to"}, "which is a Go keyword"},
		{[]string{"new", "client"}, "clashes with framework/client"},
		{[]string{"list", "x"}, "list takes no arguments"},
		{[]string{"gen", "../x"}, "is not a service directory"},
	} {
		code, _, errOut := runCLI(t, append(c.args, "--root", root)...)
		if c.args == nil {
			code, _, errOut = runCLI(t)
		}
		if code != exitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("svcgen %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
	if files := snapshot(t, filepath.Join(root, "services")); len(files) != 0 {
		t.Errorf("files were written: %v", files)
	}
}

func TestNew_ExistingServiceIsRefusedAndLeftAlone(t *testing.T) {
	root := fakeRoot(t)
	dir := filepath.Join(root, "services", "payment")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "service.go"), []byte("package payment // mine\n"), 0o644)
	before := snapshot(t, root)
	code, _, errOut := runCLI(t, "new", "payment", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "services/payment already exists") || !strings.Contains(errOut, "svcgen gen payment") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestNew_DryRunPrintsEveryFileAndWritesNothing(t *testing.T) {
	root := fakeRoot(t)
	code, out, errOut := runCLI(t, "new", "payment", "--dry-run", "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, f := range []string{"service.go", "endpoint_gen.go", "transport_gen.go", "client_gen.go", "service_test.go", "conformance_test.go", "cmd/payment/main.go"} {
		if !strings.Contains(out, "=== services/payment/"+f+" (would create") {
			t.Errorf("dry run does not show %s", f)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "services")); !os.IsNotExist(err) {
		t.Fatalf("dry run wrote services/: %v", err)
	}
}

func TestNew_LeavesNoTemporaryDirectory(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "fraud-check", "--root", root); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "services"))
	if len(entries) != 1 || entries[0].Name() != "fraud-check" {
		t.Fatalf("services/ holds %v", entries)
	}
	if _, err := os.Stat(filepath.Join(root, "services", "fraud-check", "cmd", "fraud-check", "main.go")); err != nil {
		t.Fatal(err)
	}
}

// addMethod inserts lines at the end of the Service interface.
func addMethod(t *testing.T, path, lines string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const end = "\n}\n\n// HelloRequest"
	if !bytes.Contains(b, []byte(end)) {
		t.Fatalf("%s: no end of the Service interface", path)
	}
	b = bytes.Replace(b, []byte(end), []byte("\n"+lines+end), 1)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGen_UnsupportedSignatureNamesItAndWritesNothing(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	sf := filepath.Join(root, "services", "payment", "service.go")
	addMethod(t, sf, "\tRefund(ctx context.Context, id string) (*RefundResponse, error)")
	before := snapshot(t, root)
	code, _, errOut := runCLI(t, "gen", "payment", "--root", root)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stderr %s", code, errOut)
	}
	for _, want := range []string{
		"nothing was written",
		"services/payment/service.go:23: Refund: request type string is not a struct",
		"services/payment/service.go:23: Refund: response type is the pointer *RefundResponse",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestGen_SecondRunChangesNothing(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != 0 {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	sf := filepath.Join(root, "services", "payment", "service.go")
	addMethod(t, sf, "\t//warren:http GET /payments/{id}\n\tStatus(ctx context.Context, req StatusRequest) (StatusResponse, error)")
	code, out, errOut := runCLI(t, "gen", "./services/payment", "--root", root)
	if code != 0 || !strings.Contains(out, "appended for you to fill in") {
		t.Fatalf("first gen: exit %d\n%s\n%s", code, out, errOut)
	}
	before := snapshot(t, root)
	code, out, errOut = runCLI(t, "gen", "--root", root)
	if code != 0 || strings.TrimSpace(out) != "services/payment: up to date" {
		t.Fatalf("second gen: exit %d\n%s\n%s", code, out, errOut)
	}
	sameFiles(t, before, snapshot(t, root))
}

func TestList_ShowsServicesMethodsAndRoutes(t *testing.T) {
	root := fakeRoot(t)
	runCLI(t, "new", "payment", "--methods", "Charge", "--root", root)
	code, out, errOut := runCLI(t, "list", "--root", root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"payment", "Hello", "GET /hello/{name}", "Charge", "POST /charge", "ChargeRequest → ChargeResponse"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
}
