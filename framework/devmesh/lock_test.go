package devmesh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A second mesh on a state directory in use is refused before it touches
// anything there: the running mesh's etcd data and demo data survive, and
// the message names the holder and the way out.
func TestStart_RefusesASecondMeshOnTheSameStateDirAndWipesNothing(t *testing.T) {
	dir := t.TempDir()
	markers := []string{filepath.Join(dir, "etcd", "member"), filepath.Join(dir, "data", "user", "u-1.json")}
	for _, p := range markers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	release, err := lockStateDir(dir) // the running mesh
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = Start(ctx, Config{Root: "../..", StateDir: dir, Out: &strings.Builder{}})
	if !errors.Is(err, ErrStateDirInUse) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "-state") {
		t.Fatalf("second Start = %v; want ErrStateDirInUse naming the holder's pid and -state", err)
	}
	for _, p := range markers {
		if b, err := os.ReadFile(p); err != nil || string(b) != "keep" {
			t.Fatalf("%s after the refused start: %q, %v", p, b, err)
		}
	}
	release()
	again, err := lockStateDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again()
}

func TestFindRoot_WalksUpToTheModule(t *testing.T) {
	root, err := FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil || filepath.Base(filepath.Dir(root)) == "framework" {
		t.Fatalf("FindRoot(.) = %s", root)
	}
	if again, err := FindRoot(filepath.Join(root, "framework", "devmesh")); err != nil || again != root {
		t.Fatalf("FindRoot(framework/devmesh) = %s, %v; want %s", again, err, root)
	}
	if _, err := FindRoot(t.TempDir()); err == nil {
		t.Fatal("FindRoot of a directory outside any module: no error")
	}
}
