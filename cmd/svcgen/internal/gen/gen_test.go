package gen

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
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
