package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// docs/svcgen.md, gen: "with several services, a problem in any of them
// writes nothing at all." gen of one broken service writing nothing was
// tested; this breaks one of two services whose code is out of date and
// checks that the other one, which on its own gen would update, is left
// as it was too.
func TestGen_AProblemInOneServiceWritesNothingForAny(t *testing.T) {
	root := fakeRoot(t)
	for _, name := range []string{"payment", "ledger"} {
		if code, _, errOut := runCLI(t, "new", name, "--root", root); code != exitOK {
			t.Fatalf("new %s: exit %d: %s", name, code, errOut)
		}
	}
	// payment: a good new method gen would generate and stub.
	addMethod(t, filepath.Join(root, "services", "payment", "service.go"),
		"\t//warren:http GET /payments/{id}\n\tStatus(ctx context.Context, req StatusRequest) (StatusResponse, error)")
	// ledger: a method gen refuses.
	addMethod(t, filepath.Join(root, "services", "ledger", "service.go"),
		"\tPost(ctx context.Context, id string) (*PostResponse, error)")
	before := snapshot(t, root)
	for _, args := range [][]string{
		{"gen", "--root", root},                      // every service
		{"gen", "payment", "ledger", "--root", root}, // named, the good one first
	} {
		code, out, errOut := runCLI(t, args...)
		if code != exitFailed {
			t.Fatalf("%q: exit %d, want %d\n%s%s", args, code, exitFailed, out, errOut)
		}
		for _, want := range []string{"nothing was written", "services/ledger/service.go", "Post: request type string is not a struct"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%q: stderr lacks %q:\n%s", args, want, errOut)
			}
		}
		if strings.Contains(out, "services/payment: wrote") {
			t.Errorf("%q: payment was written beside ledger's problem:\n%s", args, out)
		}
		sameFiles(t, before, snapshot(t, root))
	}
}
