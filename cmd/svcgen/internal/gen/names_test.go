package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path"
	"strconv"
	"strings"
	"testing"
)

// TestPackageName_RefusesWhatTheGeneratedMainImportsOrDeclares: a service
// named like a package main.go imports (the registry backends, grpcserver)
// or a name it declares would not compile ("memory redeclared in this
// block"), so svcgen new refuses it and says why.
func TestPackageName_RefusesWhatTheGeneratedMainImportsOrDeclares(t *testing.T) {
	for name, want := range map[string]string{
		"memory":     "would clash with the package memory (github.com/warren-mesh/warren/framework/registry/memory) that the generated main.go imports; pick another name",
		"zookeeper":  "would clash with the package zookeeper",
		"kubernetes": "would clash with the package kubernetes",
		"etcd":       "would clash with the package etcd",
		"consul":     "would clash with the package consul",
		"grpcserver": "would clash with the package grpcserver",
		"bootstrap":  "bootstrap",
		"version":    "would clash with the name version that the generated main.go declares or uses",
		"registries": "would clash with the name registries that the generated main.go declares or uses",
		"start":      "conformance_test.go",
	} {
		if pkg, err := PackageName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PackageName(%q) = %q, %v; want an error containing %q", name, pkg, err, want)
		}
	}
}

// TestNew_ServicePackageIsNeverShadowed renders the files of `svcgen new`
// that import the service package and checks that the package's name
// appears in them only as a qualifier (pkg.X): never as an import, a
// variable or a parameter of the same name. `settings` was shadowed by
// main's local variable once ("settings.ServiceName undefined").
func TestNew_ServicePackageIsNeverShadowed(t *testing.T) {
	for _, name := range []string{"settings", "payment", "fraud-check", "deps", "grpc", "service"} {
		for _, grpc := range []bool{false, true} {
			files, err := New(NewOptions{Name: name, Module: "example.com/shop", GRPC: grpc, Port: 8090, Registry: "memory"})
			if err != nil {
				t.Errorf("new %s (grpc %v): %v", name, grpc, err)
				continue
			}
			pkg := strings.ReplaceAll(name, "-", "")
			for _, fn := range []string{"cmd/" + name + "/main.go", "conformance_test.go"} {
				p := "services/" + name + "/" + fn
				f, err := parser.ParseFile(token.NewFileSet(), p, files[p], parser.SkipObjectResolution)
				if err != nil {
					t.Fatal(err)
				}
				for _, imp := range f.Imports {
					ip, _ := strconv.Unquote(imp.Path.Value)
					if path.Base(ip) == pkg && !strings.HasSuffix(ip, "/services/"+name) {
						t.Errorf("%s (grpc %v) imports %s, named like the service package", p, grpc, ip)
					}
				}
				qualifier := map[*ast.Ident]bool{}
				ast.Inspect(f, func(n ast.Node) bool {
					switch n := n.(type) {
					case *ast.SelectorExpr:
						if id, ok := n.X.(*ast.Ident); ok {
							qualifier[id] = true
						}
					case *ast.Ident:
						if n.Name == pkg && !qualifier[n] {
							t.Errorf("%s (grpc %v) uses %s other than as the package's qualifier, at offset %d", p, grpc, pkg, n.Pos())
						}
					}
					return true
				})
			}
		}
	}
}

// TestPackageName_ADashedNameIsCheckedAsItsGoPackage: the Go package is
// the name without dashes, so a name whose package is reserved is
// refused although the name itself is not ("ma-in" would be package main,
// which nothing can import; "frame-work" the framework's directory).
// Mutation audit M6: kills skipping the reservedNames[pkg] check.
func TestPackageName_ADashedNameIsCheckedAsItsGoPackage(t *testing.T) {
	for name, want := range map[string]string{
		"ma-in":      `service name "ma-in" maps to Go package main, which cannot be imported`,
		"frame-work": `service name "frame-work" maps to Go package framework, which is the framework's directory`,
		"vend-or":    `service name "vend-or" maps to Go package vendor, which has a special meaning to the go command`,
	} {
		if pkg, err := PackageName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("PackageName(%q) = %q, %v; want an error containing %q", name, pkg, err, want)
		}
	}
}
