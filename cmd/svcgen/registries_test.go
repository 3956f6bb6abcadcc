package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
)

// TestNew_RegistryIsAnyBackendTheMainOffers: `svcgen new --registry`
// takes every backend the generated main offers — each name in
// gen.MainRegistries is its package's Backend().Name, so the default the
// main records is one --registry accepts — and the main records it.
func TestNew_RegistryIsAnyBackendTheMainOffers(t *testing.T) {
	backends := map[string]registry.Backend{}
	for _, b := range []registry.Backend{etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend(), memory.Backend()} {
		backends[b.Name] = b
	}
	for _, name := range gen.MainRegistries {
		if _, ok := backends[name]; !ok {
			t.Errorf("gen.MainRegistries lists %q, which no backend package is named", name)
		}
	}
	p := absentServiceName(t)
	for _, name := range []string{"zookeeper", "kubernetes"} {
		root := fakeRoot(t)
		if code, out, errOut := runCLI(t, "new", p("pay"), "--registry", name, "--root", root); code != 0 {
			t.Fatalf("svcgen new --registry %s: exit %d\n%s%s", name, code, out, errOut)
		}
		main, err := os.ReadFile(filepath.Join(root, "services", p("pay"), "cmd", p("pay"), "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		if want := `bootstrap.WithDefault("registry", "` + name + `")`; !strings.Contains(string(main), want) {
			t.Errorf("--registry %s: main.go lacks %s:\n%s", name, want, main)
		}
		for _, r := range gen.MainRegistries {
			if !strings.Contains(string(main), r+".Backend()") || !strings.Contains(string(main), `/framework/registry/`+r+`"`) {
				t.Errorf("main.go does not offer %s:\n%s", r, main)
			}
		}
	}
	if !slices.Equal(gen.MainRegistries[:1], []string{"etcd"}) {
		t.Errorf("the main's default registry is %q; the docs say etcd", gen.MainRegistries[0])
	}
}

// TestNew_RegistryPackageIsListedFirst: `svcgen new --registry-package
// PATH` imports the user's own backend and lists it before Warren's, so
// it is the default; a path that cannot be imported as a name is refused
// (report j48b F5). TestNew_PaymentBuildsVetsAndPassesItsTests builds such
// a main.
func TestNew_RegistryPackageIsListedFirst(t *testing.T) {
	p := absentServiceName(t)
	root := fakeRoot(t)
	if code, out, errOut := runCLI(t, "new", p("pay"), "--registry-package", "example.com/ext/hreg", "--root", root); code != 0 {
		t.Fatalf("svcgen new --registry-package: exit %d\n%s%s", code, out, errOut)
	}
	main, err := os.ReadFile(filepath.Join(root, "services", p("pay"), "cmd", p("pay"), "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`hreg "example.com/ext/hreg"`, "bootstrap.WithRegistries(hreg.Backend(), etcd.Backend(),"} {
		if !strings.Contains(string(main), want) {
			t.Errorf("main.go lacks %s:\n%s", want, main)
		}
	}
	if strings.Contains(string(main), `WithDefault("registry"`) {
		t.Errorf("main.go records a default registry; the first listed is the default:\n%s", main)
	}
	for _, bad := range []string{"not a path", "example.com/ext/etcd", "example.com/ext/..."} {
		if code, _, errOut := runCLI(t, "new", p("pay2"), "--registry-package", bad, "--root", fakeRoot(t)); code != 2 {
			t.Errorf("--registry-package %q: exit %d, want 2 (%s)", bad, code, errOut)
		}
	}
}
