package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
)

// The tests in this file guard "a failed `svcgen new` leaves no half-made
// service" (docs/svcgen.md § svcgen new; guard audit m5, N3) with writes
// that really fail. The tests run as root, so no permission can make one
// fail: one test puts the project so deep that a path svcgen writes
// exceeds Linux's PATH_MAX, the other changes a deploy file while new
// runs, which commit refuses to overwrite.

// initProject is a project as `svcgen init` writes it (deploy/compose
// with svcgen's markers, no services/), at a path of its own.
func initProject(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "shop")
	if code, out, errOut := runIn(t.TempDir(), nil, "init", "example.com/shop", "--warren", "v0.4.0", "--dir", dir); code != exitOK {
		t.Fatalf("svcgen init: exit %d\n%s%s", code, out, errOut)
	}
	return dir
}

// tree lists every file (with its content) and directory (as "dir")
// under root by relative path.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[filepath.ToSlash(rel)+"/"] = "dir"
			return nil
		}
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameTree fails the test for every entry added, removed or changed.
func sameTree(t *testing.T, before, after map[string]string) {
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
			t.Errorf("%s was left behind", p)
		}
	}
}

// deepPath is a path of exactly n bytes under a new temporary directory,
// made of directories of at most 250 bytes each; the last one does not
// exist yet.
func deepPath(t *testing.T, n int) string {
	t.Helper()
	p := t.TempDir()
	for n-len(p) > 251 {
		p = filepath.Join(p, strings.Repeat("d", 200))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if n-len(p) < 2 {
		t.Fatalf("cannot make a path of %d bytes from %s", n, p)
	}
	return filepath.Join(p, strings.Repeat("s", n-len(p)-1))
}

// TestNew_AWriteThatFailsPartWayLeavesNothingBehind: svcgen new in a
// project whose path is so long that its temporary directory
// (services/.svcgen-payment-RANDOM, 1 to 10 random digits) can be made but
// cmd/payment/main.go in it cannot be written (ENAMETOOLONG: the whole
// path exceeds PATH_MAX, 4096 bytes with its NUL, for root too). new
// exits 1 and leaves the project as it was: no temporary directory, no
// services/ (the project had none), every file unchanged. Fails without
// createDir's `defer os.RemoveAll(tmp)` (the temporary directory stays)
// or its removal of the directories it made (services/ stays).
func TestNew_AWriteThatFailsPartWayLeavesNothingBehind(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("relies on Linux's PATH_MAX of 4096 bytes")
	}
	const pathMax = 4096                      // bytes, with the terminating NUL
	tmpPrefix := "/services/.svcgen-payment-" // then 1-10 digits
	// The temporary directory's path is at most 4085 bytes (made), and
	// /cmd/payment/main.go (20 bytes) in it at least 4096 (refused).
	root := deepPath(t, 4075-len(tmpPrefix))
	if err := os.Rename(initProject(t), root); err != nil {
		t.Fatal(err)
	}
	if l := len(root) + len(tmpPrefix) + 1 + len("/cmd/payment/main.go"); l < pathMax {
		t.Fatalf("main.go's path would be %d bytes, under PATH_MAX: the test is wrong", l)
	}
	before := tree(t, root)
	if _, ok := before["services/"]; ok {
		t.Fatal("svcgen init wrote services/; this test wants a project without one")
	}
	code, out, errOut := runCLI(t, "new", "payment", "--root", root)
	if code != exitFailed || !strings.Contains(errOut, "file name too long") || strings.Contains(out, "created") {
		t.Errorf("svcgen new with a path over PATH_MAX: exit %d, want %d and the write's error\n%s%s", code, exitFailed, out, errOut)
	}
	sameTree(t, before, tree(t, root))
}

// TestNew_DeployEntriesThatCannotBeWrittenTakeTheServiceWithThem: when
// new's deploy entries cannot be written after the service's directory
// was put in place — here deploy/compose/compose.yaml was saved by the
// user while new ran, and commit does not overwrite it — the directory
// goes again, services/ too (new made it), and the user's edit is kept:
// the project is as it was but for that edit. commitDeploys, the hook of
// placeService, saves the edit and then runs the real commit. Fails
// without placeService's os.RemoveAll(dir) (services/payment stays) or
// its removeEmpty (services/ stays).
func TestNew_DeployEntriesThatCannotBeWrittenTakeTheServiceWithThem(t *testing.T) {
	root := initProject(t)
	files, err := gen.New(gen.NewOptions{Name: "payment", Module: "example.com/shop"})
	if err != nil {
		t.Fatal(err)
	}
	deploys, err := deployEdits(root, "payment", false)
	if err != nil || len(deploys) == 0 {
		t.Fatalf("deploy edits of the new project: %d, %v; want some", len(deploys), err)
	}
	compose := filepath.Join(root, "deploy", "compose", "compose.yaml")
	before := tree(t, root)
	const mine = "# the user's line, saved while svcgen ran\n"
	saveWhileNewRuns := func(ws []fileWrite) error {
		if _, err := os.Stat(filepath.Join(root, "services", "payment", "service.go")); err != nil {
			t.Errorf("the deploy entries are written before the service is in place: %v", err)
		}
		b, err := os.ReadFile(compose)
		if err != nil {
			return err
		}
		if err := os.WriteFile(compose, append(b, mine...), 0o644); err != nil {
			return err
		}
		return commit(ws)
	}
	err = placeService(root, "services/payment", files, deploys, saveWhileNewRuns, "svcgen")
	var changed errChanged
	if !errors.As(err, &changed) || changed.path != compose {
		t.Fatalf("placeService: %v; want compose.yaml changed while svcgen ran", err)
	}
	before["deploy/compose/compose.yaml"] += mine
	sameTree(t, before, tree(t, root))
}
