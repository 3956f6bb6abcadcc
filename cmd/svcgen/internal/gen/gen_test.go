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
			out, err := Generate("services/"+name, name, module, files, os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			for fn, want := range out.Files {
				got := files[fn]
				if strings.Contains(fn, "/") { // a transport's extra file (a .proto) below the service
					got, _ = os.ReadFile(filepath.Join(dir, filepath.FromSlash(fn)))
				}
				if !bytes.Equal(got, want) {
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
			out, err := Generate("services/"+name, name, module, files, nil)
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
			out2, err := Generate("services/"+name, name, module, again, nil)
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

// TestNew_MethodsGetTheRouteTheirNameCallsFor: `svcgen new --methods`
// gives Get, List, Delete and Update REST routes (Delete and Update
// idempotent) and every other name POST /kebab-name.
func TestNew_MethodsGetTheRouteTheirNameCallsFor(t *testing.T) {
	files, err := New(NewOptions{Name: "payment", Module: "example.com/shop",
		Methods: []string{"Get", "List", "Delete", "Update", "GetInvoice", "ListInvoices", "Getaway", "Charge"}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := Load("services/payment", "payment", "example.com/shop", map[string][]byte{"service.go": files["services/payment/service.go"]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Get": "GET /payment/{id}", "List": "GET /payment", "Delete": "DELETE /payment/{id}",
		"Update": "PUT /payment/{id}", "GetInvoice": "GET /invoice/{id}", "ListInvoices": "GET /invoices",
		"Getaway": "POST /getaway", "Charge": "POST /charge",
	}
	for _, m := range svc.Methods {
		if w, ok := want[m.Name]; ok {
			if got := svc.Routes(m.Name)["http"]; got != w {
				t.Errorf("%s: route %q, want %q", m.Name, got, w)
			}
			if idem := m.Name == "Delete" || m.Name == "Update"; m.Idempotent != idem {
				t.Errorf("%s: idempotent %v, want %v", m.Name, m.Idempotent, idem)
			}
		}
	}
	// The appended request types carry the path parameter.
	if !bytes.Contains(files["services/payment/service.go"], []byte("type GetRequest struct {\n\tID string `json:\"id\"`\n}")) {
		t.Errorf("GetRequest has no ID field:\n%s", files["services/payment/service.go"])
	}
}

// TestGenerate_FrameworkImportedByItsOwnPath: a service in another module
// imports the framework as github.com/warren-mesh/warren, never by the
// user's module path.
func TestGenerate_FrameworkImportedByItsOwnPath(t *testing.T) {
	files, err := New(NewOptions{Name: "payment", Module: "example.com/shop"})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range files {
		if bytes.Contains(b, []byte(`"example.com/shop/framework`)) {
			t.Errorf("%s imports the framework by the user's module path", p)
		}
		if (strings.HasSuffix(p, "client_gen.go") || strings.HasSuffix(p, "transport_gen.go")) && !bytes.Contains(b, []byte(`"github.com/warren-mesh/warren/framework/`)) {
			t.Errorf("%s does not import the framework", p)
		}
	}
	for _, p := range []string{"services/payment/cmd/payment/main.go", "services/payment/conformance_test.go"} {
		if !bytes.Contains(files[p], []byte(`"example.com/shop/services/payment"`)) {
			t.Errorf("%s does not import the service by the user's module path", p)
		}
	}
}
