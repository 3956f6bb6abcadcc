package gen

import (
	"bytes"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata from the current templates")

const module = "github.com/warren-mesh/warren"

// readDir returns the Go files of dir by name.
func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// TestGenerate_RepositoryServicesAreUpToDate regenerates every service of
// the repository in memory: the committed *_gen.go files must be exactly
// what svcgen writes, and no stub may be pending.
func TestGenerate_RepositoryServicesAreUpToDate(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..")
	dirs, _ := filepath.Glob(filepath.Join(root, "services", "*", "service.go"))
	if len(dirs) == 0 {
		t.Skip("no services in the repository")
	}
	for _, sf := range dirs {
		dir := filepath.Dir(sf)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			files := readDir(t, dir)
			out, err := Generate("services/"+name, name, module, files)
			if err != nil {
				t.Fatal(err)
			}
			for fn, want := range out.Files {
				if got := files[fn]; !bytes.Equal(got, want) {
					t.Errorf("services/%s/%s differs from what svcgen generates (run `go run ./cmd/svcgen gen %s`):\n%s", name, fn, name, lineDiff(got, want))
				}
			}
		})
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(a, b []byte) string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + itoa(i+1) + ":\n  have " + quote(x) + "\n  want " + quote(y)
		}
	}
	return "(same lines)"
}

// golden compares got with testdata/<name>.golden, or rewrites it with
// -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run `go test ./cmd/svcgen/internal/gen -update` to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from its golden file (if the change is intended, run with -update and review the diff):\n%s", path, lineDiff(want, got))
	}
}

// TestGenerate_GoldenFiles renders each testdata service and compares every
// file gen writes with its golden copy. -update refreshes them.
func TestGenerate_GoldenFiles(t *testing.T) {
	for _, name := range []string{"shapes", "stubs"} {
		t.Run(name, func(t *testing.T) {
			files := readDir(t, filepath.Join("testdata", name))
			out, err := Generate("services/"+name, name, module, files)
			if err != nil {
				t.Fatal(err)
			}
			for fn, b := range out.Files {
				golden(t, name+"/"+fn, b)
			}
			again := map[string][]byte{}
			for fn, b := range files {
				again[fn] = b
			}
			for fn, b := range out.Files {
				again[fn] = b
			}
			out2, err := Generate("services/"+name, name, module, again)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			for fn, b := range out2.Files {
				if !bytes.Equal(again[fn], b) {
					t.Errorf("second run changes %s:\n%s", fn, lineDiff(again[fn], b))
				}
			}
			if len(out2.Appended) != 0 {
				t.Errorf("second run appends again to %v", slices.Collect(maps.Keys(out2.Appended)))
			}
		})
	}
}

// TestNew_GoldenFiles renders `svcgen new payment --port 8090 --registry
// consul --methods Refund`.
func TestNew_GoldenFiles(t *testing.T) {
	files, err := New(NewOptions{Name: "payment", Module: module, Port: 8090, Registry: "consul", Methods: []string{"Refund"}})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		golden(t, "new/"+strings.TrimPrefix(p, "services/payment/"), b)
	}
	// Without defaults the main is the plain bootstrap.Main call.
	plain, err := New(NewOptions{Name: "fraud-check", Module: module})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "new-plain/main.go", plain["services/fraud-check/cmd/fraud-check/main.go"])
	golden(t, "new-plain/service.go", plain["services/fraud-check/service.go"])
}
