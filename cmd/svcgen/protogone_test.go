package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGen_AMissingProtoIsRefusedUntilRestoredOrStartedAfresh: `svcgen new
// --grpc` and an HTTP service given //warren:grpc generate their first
// .proto, silently; deleting the .proto (or NAMEpb/ with it) of such a
// service made gen number every field afresh with no word (report j53c 9),
// and so did deleting every generated file, `rm *_gen.go` and NAMEpb/
// (report r54b G2) — now gen exits 1 naming the file, what shows the
// service had it, the git command that restores it and how to start
// afresh, and writes nothing; restored, gen is up to date; with
// --renumber (afresh on purpose), gen writes them again and says on
// stderr what that means for running callers.
func TestGen_AMissingProtoIsRefusedUntilRestoredOrStartedAfresh(t *testing.T) {
	p := absentServiceName(t)
	root := fakeRoot(t)
	linkBin(t, root)
	name, web := p("ledger"), p("web")
	if code, out, errOut := runCLI(t, "new", name, "--grpc", "--methods", "Post", "--root", root); code != 0 || strings.Contains(errOut, "afresh") {
		t.Fatalf("svcgen new --grpc: exit %d\n%s%s (needs `make protoc`); want 0 and no note", code, out, errOut)
	}
	// An HTTP service made gRPC: no .proto before, none missing.
	if code, out, errOut := runCLI(t, "new", web, "--root", root); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	wsf := filepath.Join(root, "services", web, "service.go")
	src, err := os.ReadFile(wsf)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "type Service interface {", "//warren:grpc\ntype Service interface {", 1)
	if edited == string(src) {
		t.Fatalf("no Service interface in %s", wsf)
	}
	os.WriteFile(wsf, []byte(edited), 0o644)
	wpkg := strings.ReplaceAll(web, "-", "")
	if code, out, errOut := runCLI(t, "gen", web, "--no-check", "--root", root); code != 0 || !strings.Contains(out, wpkg+"pb/"+wpkg+".proto (create)") || strings.Contains(errOut, "afresh") {
		t.Fatalf("gen of an HTTP service given //warren:grpc: exit %d\n%s%s", code, out, errOut)
	}

	dir := filepath.Join(root, "services", name)
	pkg := strings.ReplaceAll(name, "-", "")
	rel := "services/" + name + "/" + pkg + "pb/" + pkg + ".proto"
	proto := filepath.Join(dir, pkg+"pb", pkg+".proto")
	if code, out, errOut := runCLI(t, "gen", name, "--no-check", "--root", root); code != 0 {
		t.Fatalf("gen of the new gRPC service: exit %d\n%s%s", code, out, errOut)
	}
	saved, err := os.ReadFile(proto)
	if err != nil {
		t.Fatal(err)
	}
	refused := func(what, shows string) {
		t.Helper()
		before := snapshot(t, filepath.Join(root, "services"))
		code, out, errOut := runCLI(t, "gen", name, "--no-check", "--root", root)
		for _, want := range []string{rel + ": this file is missing, but the service had it (" + shows + ")", "git checkout -- " + rel,
			"run gen --renumber", "nothing was written"} {
			if code != exitFailed || !strings.Contains(errOut, want) {
				t.Errorf("gen with %s: exit %d, want 1 and stderr with %q\n%s%s", what, code, want, out, errOut)
			}
		}
		sameFiles(t, before, snapshot(t, filepath.Join(root, "services")))
	}
	mainUse := "cmd/" + name + "/main.go calls " + pkg + ".NewTransports; conformance_test.go uses NewGRPCClient"
	os.Remove(proto)
	refused("the .proto deleted", "grpc_gen.go, grpc_gen_test.go, "+pkg+"pb/"+pkg+".pb.go, "+pkg+"pb/"+pkg+"_grpc.pb.go still there; "+mainUse)
	os.WriteFile(proto, saved, 0o644)
	if code, out, errOut := runCLI(t, "gen", name, "--no-check", "--root", root); code != 0 || !strings.Contains(out, "up to date") {
		t.Fatalf("gen with the .proto restored: exit %d\n%s%s; want up to date", code, out, errOut)
	}
	os.RemoveAll(filepath.Join(dir, pkg+"pb"))
	refused(pkg+"pb/ deleted", "grpc_gen.go, grpc_gen_test.go still there; "+mainUse)

	// Starting afresh as people do: every generated file and NAMEpb/.
	gens, err := filepath.Glob(filepath.Join(dir, "*_gen.go"))
	if err != nil || len(gens) < 3 {
		t.Fatalf("the generated files: %v, %v", gens, err)
	}
	for _, g := range gens {
		os.Remove(g)
	}
	refused("rm *_gen.go and "+pkg+"pb/", "grpc_gen_test.go still there; "+mainUse)
	os.Remove(filepath.Join(dir, "grpc_gen_test.go"))
	refused("every generated file deleted", mainUse)

	code, out, errOut := runCLI(t, "gen", name, "--no-check", "--renumber", "--root", root)
	if code != 0 || !strings.Contains(out, pkg+"pb/"+pkg+".proto (create)") {
		t.Fatalf("gen --renumber with every generated file deleted: exit %d\n%s%s; want the .proto numbered afresh", code, out, errOut)
	}
	if want := "svcgen gen: note: " + rel + ": --renumber: every field was numbered afresh from 1"; !strings.Contains(errOut, want) || !strings.Contains(errOut, "git checkout -- "+rel) {
		t.Errorf("gen --renumber's stderr:\n%s\nwant a note starting %q that says how to restore the file", errOut, want)
	}
	if got, _ := os.ReadFile(proto); string(got) != string(saved) {
		t.Errorf("the .proto numbered afresh:\n%s\nwant (nothing was edited)\n%s", got, saved)
	}
}
