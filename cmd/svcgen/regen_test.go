package main

import (
	"errors"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	modpath "golang.org/x/mod/module"
)

// The tests in this file guard what audit g3 found in gen's and new's
// failure modes: a gen stopped part-way, a file edited while gen runs, the
// leftovers of a killed new, and go.mod module lines svcgen misread.

// failRenameAt makes the k-th rename of a commit (0-based) fail, as a
// write error or a kill at that point would stop it, and restores
// os.Rename when the test ends. commit renames one file at a time, and
// no test here is parallel.
func failRenameAt(t *testing.T, k int) {
	t.Helper()
	n := 0
	renameFile = func(from, to string) error {
		n++
		if n-1 == k {
			return errors.New("injected failure (audit g3)")
		}
		return os.Rename(from, to)
	}
	t.Cleanup(func() { renameFile = os.Rename })
}

// grpcServiceWithNewMethod is a fake repository with the gRPC service
// ledger whose interface has gained Post, not generated yet.
func grpcServiceWithNewMethod(t *testing.T) string {
	t.Helper()
	root := fakeRoot(t)
	linkBin(t, root)
	if code, out, errOut := runCLI(t, "new", "ledger", "--grpc", "--root", root); code != exitOK {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`)", code, out, errOut)
	}
	addMethod(t, filepath.Join(root, "services", "ledger", "service.go"),
		"\tPost(ctx context.Context, req PostRequest) (PostResponse, error)")
	return root
}

// TestGen_StoppedPartWayIsRepairedByTheNextGen: a gen whose commit stops
// after any number of its renames (a failed rename; a kill at that point
// leaves the same files) is followed by a plain gen, which must leave
// exactly what one uninterrupted gen leaves. gen runs protoc only for a
// .proto that changed, so a run stopped after the new .proto was in place
// but before ledger_grpc.pb.go was left the old gRPC stubs (no Post) for
// good: the service did not build and every later gen, and gen --verify,
// said "up to date". Fails without protoLast in cli_gen.go.
func TestGen_StoppedPartWayIsRepairedByTheNextGen(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatalf("protoc not on PATH (make protoc): %v", err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	clean := grpcServiceWithNewMethod(t)
	n := 0
	renameFile = func(from, to string) error { n++; return os.Rename(from, to) }
	code, out, errOut := runCLI(t, "gen", "ledger", "--root", clean)
	renameFile = os.Rename
	if code != exitOK {
		t.Fatalf("gen: exit %d\n%s%s", code, out, errOut)
	}
	want := snapshot(t, filepath.Join(clean, "services", "ledger"))
	if n < 5 || n > 50 {
		t.Fatalf("gen renamed %d files; want the service's files (5 to 50)", n)
	}
	for k := 0; k < n; k++ {
		if time.Now().After(deadline) {
			t.Fatalf("out of time after %d of %d interruption points", k, n)
		}
		root := grpcServiceWithNewMethod(t)
		failRenameAt(t, k)
		if code, out, errOut := runCLI(t, "gen", "ledger", "--root", root); code != exitFailed || !strings.Contains(errOut, "injected failure") {
			t.Fatalf("gen stopped at rename %d: exit %d\n%s%s\nwant 1 with the injected failure", k, code, out, errOut)
		}
		renameFile = os.Rename
		if code, out, errOut := runCLI(t, "gen", "ledger", "--root", root); code != exitOK {
			t.Fatalf("gen after the one stopped at rename %d: exit %d\n%s%s", k, code, out, errOut)
		}
		got := snapshot(t, filepath.Join(root, "services", "ledger"))
		for p, w := range want {
			if got[p] != w {
				t.Errorf("stopped at rename %d, then gen: %s differs from an uninterrupted gen's", k, p)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("stopped at rename %d, then gen: %s is left over", k, p)
			}
		}
	}
}

// TestGen_AnEditSavedWhileGenRunsIsKept: service.go saved (by the user's
// editor, or by a second gen) after gen read it and before gen replaced
// it with the stub appended: gen used to rename its copy over the file,
// and the edit was gone. Now gen refuses to replace a file that changed,
// exits 1 saying so, and the next gen appends the stub to the file as
// the user left it. Fails without the unchanged check in commit (cli.go).
func TestGen_AnEditSavedWhileGenRunsIsKept(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	sf := filepath.Join(root, "services", "payment", "service.go")
	addMethod(t, sf, "\tStatus(ctx context.Context, req StatusRequest) (StatusResponse, error)")
	v1, err := os.ReadFile(sf)
	if err != nil {
		t.Fatal(err)
	}
	v2 := string(v1) + "\n// helper is the user's, saved while gen ran.\nfunc helper() string { return \"mine\" }\n"
	saved := false
	renameFile = func(from, to string) error {
		if !saved { // the first of gen's renames: gen has read service.go long since
			saved = true
			if err := os.WriteFile(sf, []byte(v2), 0o644); err != nil {
				return err
			}
		}
		return os.Rename(from, to)
	}
	t.Cleanup(func() { renameFile = os.Rename })
	code, out, errOut := runCLI(t, "gen", "payment", "--root", root)
	renameFile = os.Rename
	if got, _ := os.ReadFile(sf); string(got) != v2 {
		t.Fatalf("the edit saved while gen ran is lost (exit %d)\n%s%s\nservice.go now:\n%s", code, out, errOut, got)
	}
	if code != exitFailed || !strings.Contains(errOut, "changed while svcgen ran") {
		t.Errorf("gen over a file saved meanwhile: exit %d\n%s%s\nwant 1 saying service.go changed", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "gen", "payment", "--root", root); code != exitOK {
		t.Fatalf("gen again: exit %d\n%s%s", code, out, errOut)
	}
	got, _ := os.ReadFile(sf)
	if !strings.HasPrefix(string(got), v2) || !strings.Contains(string(got), "func (s *PaymentService) Status(") {
		t.Errorf("after gen again, service.go is not the saved file with the Status stub appended:\n%s", got)
	}
	if code, out, errOut := runCLI(t, "gen", "payment", "--root", root); code != exitOK || strings.TrimSpace(out) != "services/payment: up to date" {
		t.Errorf("third gen: exit %d\n%s%s\nwant up to date", code, out, errOut)
	}
}

// TestGen_LeftoverOfAKilledNewIsNoService: svcgen new builds the service
// in services/.svcgen-NAME-* and renames it into place; a new killed
// before the rename (Ctrl-C runs no deferred cleanup) leaves that
// directory. gen with no name and list took it for a service whose name
// is invalid and refused to do anything until it was deleted. Fails
// without serviceDirs skipping dot directories (cli_gen.go).
func TestGen_LeftoverOfAKilledNewIsNoService(t *testing.T) {
	root := fakeRoot(t)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	// What `new order` leaves when killed after writing its files.
	left := filepath.Join(root, "services", ".svcgen-order-1234567")
	for rel, b := range snapshot(t, filepath.Join(root, "services", "payment")) {
		p := filepath.Join(left, filepath.FromSlash(strings.ReplaceAll(rel, "payment", "order")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(b), "payment", "order")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errOut := runCLI(t, "gen", "--root", root); code != exitOK || strings.TrimSpace(out) != "services/payment: up to date" {
		t.Errorf("gen beside a killed new's leftover: exit %d\n%s%s\nwant 0, payment up to date", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "list", "--root", root); code != exitOK || strings.Contains(out+errOut, ".svcgen") {
		t.Errorf("list beside a killed new's leftover: exit %d\n%s%s\nwant 0, payment only", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "new", "order", "--root", root); code != exitOK {
		t.Errorf("new order after a killed one: exit %d\n%s%s", code, out, errOut)
	}
}

// TestNew_ModuleLineAsTheGoCommandReadsIt: a go.mod whose module line has
// a trailing comment (or a quoted path) is the module the go command
// builds; svcgen took the comment for part of the path and wrote imports
// such as "example.com/shop // our shop/services/payment" into the new
// main. Fails without modfile.ModulePath in repo (cli.go).
func TestNew_ModuleLineAsTheGoCommandReadsIt(t *testing.T) {
	for _, line := range []string{
		"module example.com/shop // our shop",
		"module \"example.com/shop\"",
		"module example.com/shop",
	} {
		t.Run(strconv.Quote(line), func(t *testing.T) {
			root := t.TempDir()
			if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte(line+"\n\ngo 1.26\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if code, out, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
				t.Fatalf("new: exit %d\n%s%s", code, out, errOut)
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "services", "payment", "cmd", "payment", "main.go"), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, im := range f.Imports {
				p, _ := strconv.Unquote(im.Path.Value)
				if err := modpath.CheckImportPath(p); err != nil {
					t.Errorf("main.go imports %q: %v", p, err)
				}
				found = found || p == "example.com/shop/services/payment"
			}
			if !found {
				t.Errorf("main.go does not import example.com/shop/services/payment")
			}
		})
	}
}

// TestGen_ProtocNeverOverwritesAUsersOwnPBFile: a service that gains
// //warren:grpc while NAMEpb/NAME.pb.go holds a file of the user's (protoc
// output of a .proto of theirs): gen refuses, pointing at --renumber, and
// with --renumber gen used to write svcgen's protoc output over it
// without a word. Now the file is named, nothing is written, and once it
// is moved away gen generates the service's gRPC code. Fails without the
// header check on protoc's outputs in extraFiles (protoc.go).
func TestGen_ProtocNeverOverwritesAUsersOwnPBFile(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatalf("protoc not on PATH (make protoc): %v", err)
	}
	root := fakeRoot(t)
	linkBin(t, root)
	if code, _, errOut := runCLI(t, "new", "payment", "--root", root); code != exitOK {
		t.Fatalf("new: exit %d: %s", code, errOut)
	}
	dir := filepath.Join(root, "services", "payment")
	mine := "// Code generated by protoc-gen-go. DO NOT EDIT.\n// source: proto/payment.proto\n\npackage paymentpb\n\n// Mine is the user's.\ntype Mine struct{}\n"
	pb := filepath.Join(dir, "paymentpb", "payment.pb.go")
	if err := os.MkdirAll(filepath.Dir(pb), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pb, []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	sf := filepath.Join(dir, "service.go")
	src, err := os.ReadFile(sf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sf, []byte(strings.Replace(string(src), "\ntype Service interface", "\n//warren:grpc\ntype Service interface", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	code, out, errOut := runCLI(t, "gen", "payment", "--renumber", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "services/payment/paymentpb/payment.pb.go:1: this file was not compiled from svcgen's .proto") {
		t.Errorf("gen --renumber over the user's payment.pb.go: exit %d\n%s%s\nwant 1 naming the file", code, out, errOut)
	}
	sameFiles(t, before, snapshot(t, dir))
	if err := os.Rename(pb, filepath.Join(root, "mine.pb.go.txt")); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "gen", "payment", "--root", root); code != exitOK {
		t.Fatalf("gen with the file moved away: exit %d\n%s%s", code, out, errOut)
	}
	if got, _ := os.ReadFile(pb); !strings.HasPrefix(string(got), "// Code generated by svcgen") {
		t.Errorf("payment.pb.go after gen is not svcgen's:\n%.300s", got)
	}
}
