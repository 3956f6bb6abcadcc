package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes files (slash paths relative to dir).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, b := range files {
		path := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTypecheck_AnErrorOutsideTheProjectIsNotBlamedOnTheService: when the
// code that does not compile is in a module the project's go.mod replaces
// with a directory (report u6 R3: a Warren checkout someone was editing),
// gen says the failing file is outside the project and names the module
// and the directory, instead of "the service does not compile" alone. A
// package only a test imports is reported the same way, and an error in
// the service's own code is not called outside. Tiny modules, no
// framework: each check is one small go build (and go vet).
func TestTypecheck_AnErrorOutsideTheProjectIsNotBlamedOnTheService(t *testing.T) {
	t.Setenv("GOWORK", "off")
	tmp := t.TempDir()
	broken := filepath.Join(tmp, "broken")
	writeTree(t, broken, map[string]string{
		"go.mod":    "module example.com/broken\n\ngo 1.22\n",
		"broken.go": "package broken\n\n// F returns a string where it promises an int.\nfunc F() int { return \"x\" }\n",
	})
	root := filepath.Join(tmp, "shop")
	writeTree(t, root, map[string]string{
		"go.mod": "module example.com/shop\n\ngo 1.22\n\nrequire example.com/broken v0.0.0\n\nreplace example.com/broken => ../broken\n",
		// payment imports the broken module.
		"services/payment/payment.go":          "package payment\n\nimport \"example.com/broken\"\n\nvar X = broken.F()\n",
		"services/payment/cmd/payment/main.go": "package main\n\nimport _ \"example.com/shop/services/payment\"\n\nfunc main() {}\n",
		"services/ledger/ledger.go":            "package ledger\n\nvar X = 1\n",
		"services/ledger/ledger_test.go":       "package ledger\n\nimport (\n\t\"testing\"\n\n\t\"example.com/broken\"\n)\n\nfunc TestX(t *testing.T) { _ = broken.F() }\n",
		"services/ledger/cmd/ledger/main.go":   "package main\n\nimport _ \"example.com/shop/services/ledger\"\n\nfunc main() {}\n",
		"services/refund/refund.go":            "package refund\n\nvar X int = \"mine\"\n",
		"services/refund/cmd/refund/main.go":   "package main\n\nimport _ \"example.com/shop/services/refund\"\n\nfunc main() {}\n",
	})
	note := "../broken/broken.go: not in this project but in module example.com/broken at " + broken + ", where your go.mod's replace points; neither svcgen's code nor yours is at fault"
	for _, c := range []struct {
		name    string
		service string
		wrote   bool
		want    []string
		not     []string
	}{
		{"build, written", "payment", true, []string{
			"the generated code was written, but the service does not compile, because code it imports from outside this project does not (your code is not at fault):\n",
			"  ../broken/broken.go:4:", note, "make that checkout compile again",
		}, nil},
		{"build, up to date", "payment", false, []string{
			"the generated code is up to date, but the service does not compile, because code it imports from outside this project does not",
			note,
		}, []string{"was written"}},
		{"tests", "ledger", true, []string{
			"the generated code was written and the service builds, but its tests do not compile, because code they import from outside this project does not (your code is not at fault):\n",
			note,
		}, nil},
		{"own code", "refund", true, []string{
			"the generated code was written, but the service does not compile:\n",
			"services/refund/refund.go:3:",
		}, []string{"outside this project", "not in this project"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rel := "services/" + c.service
			err := typecheck(root, []string{rel}, map[string]bool{rel: c.wrote})
			var drift errDrift
			if !errors.As(err, &drift) {
				t.Fatalf("typecheck: %v, want the drift report", err)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("report lacks %q:\n%s", w, msg)
				}
			}
			for _, n := range c.not {
				if strings.Contains(msg, n) {
					t.Errorf("report has %q:\n%s", n, msg)
				}
			}
		})
	}
}

// TestOutsideNotes_NamesAModuleOfTheModuleCacheWithItsVersion: a failing
// file in the module cache (path@version directories) is named as that
// module at that version, to be fixed by requiring another version; a
// file of the project itself is not named.
func TestOutsideNotes_NamesAModuleOfTheModuleCacheWithItsVersion(t *testing.T) {
	cache := t.TempDir()
	mod := filepath.Join(cache, "example.com", "old@v1.2.3")
	writeTree(t, mod, map[string]string{"go.mod": "module example.com/old\n", "sub/old.go": "package sub\n"})
	root := filepath.Join(t.TempDir(), "shop")
	writeTree(t, root, map[string]string{"go.mod": "module example.com/shop\n\nrequire example.com/old v1.2.3\n"})
	file := filepath.Join(mod, "sub", "old.go")
	notes, only := outsideNotes(root, "# example.com/old/sub\n"+file+":3:1: undefined: x\n"+file+":4:1: undefined: y\n")
	want := file + ": not in this project but in module example.com/old@v1.2.3 in the module cache; neither svcgen's code nor yours is at fault: require a version of it that compiles (go get), then run gen again"
	if !only || len(notes) != 1 || notes[0] != want {
		t.Errorf("notes %q (only outside: %v), want one: %q", notes, only, want)
	}
	notes, only = outsideNotes(root, file+":3:1: undefined: x\nvet: services/payment/service.go:9:2: undefined: z\n")
	if only || len(notes) != 1 {
		t.Errorf("a report with a file of the project too: notes %q, only outside %v; want one note and false", notes, only)
	}
}

// TestTypecheck_AModuleTheProjectDoesNotListIsTheProjectsToTidy (review
// s58-r2 F4): a replaced checkout that gained a dependency (lib imports
// golang.org/x/mod, which the shop's go.sum lacks), or the service's own
// import of a module go.mod does not require, fails with the go command's
// module report at the importing file. The fix is `go mod tidy` in the
// project, not in the checkout: gen says so and does not call the
// checkout's code broken. Offline: GOPROXY=off, and the go command
// reports these before it would download anything.
func TestTypecheck_AModuleTheProjectDoesNotListIsTheProjectsToTidy(t *testing.T) {
	t.Setenv("GOWORK", "off")
	t.Setenv("GOPROXY", "off")
	tmp := t.TempDir()
	writeTree(t, filepath.Join(tmp, "lib"), map[string]string{
		"go.mod": "module example.com/lib\n\ngo 1.22\n\nrequire golang.org/x/mod v0.20.0\n",
		"lib.go": "package lib\n\nimport \"golang.org/x/mod/semver\"\n\nvar V = semver.IsValid(\"v1\")\n",
	})
	root := filepath.Join(tmp, "shop")
	writeTree(t, root, map[string]string{
		"go.mod":                      "module example.com/shop\n\ngo 1.22\n\nrequire example.com/lib v0.0.0\n\nreplace example.com/lib => ../lib\n",
		"services/payment/payment.go": "package payment\n\nimport \"example.com/lib\"\n\nvar X = lib.V\n",
		"services/refund/refund.go":   "package refund\n\nimport \"example.com/nothere/x\"\n\nvar X = x.Y\n",
	})
	tidy := "the project's go.mod or go.sum does not list every module this code needs (a replaced checkout that gained a dependency does this too); neither svcgen's code nor yours is at fault: run `go mod tidy` in " + root + ", then run gen again"
	for _, c := range []struct{ service, goflags, line string }{
		{"payment", "", "  ../lib/lib.go:3:8: missing go.sum entry for module providing package golang.org/x/mod/semver"},
		{"refund", "", "  services/refund/refund.go:3:8: no required module provides package example.com/nothere/x"},
		{"refund", "-mod=readonly", "  services/refund/refund.go:3:8: cannot find module providing package example.com/nothere/x"},
	} {
		t.Run(c.service+c.goflags, func(t *testing.T) {
			t.Setenv("GOFLAGS", c.goflags)
			rel := "services/" + c.service
			err := typecheck(root, []string{rel}, map[string]bool{rel: false})
			var drift errDrift
			if !errors.As(err, &drift) {
				t.Fatalf("typecheck: %v, want the drift report", err)
			}
			msg := err.Error()
			for _, w := range []string{
				"the generated code is up to date, but the service does not compile, because the project's go.mod or go.sum does not list a module it needs (your code is not at fault):\n",
				c.line, tidy,
			} {
				if !strings.Contains(msg, w) {
					t.Errorf("report lacks %q:\n%s", w, msg)
				}
			}
			for _, n := range []string{"not in this project", "compile again", "outside this project"} {
				if strings.Contains(msg, n) {
					t.Errorf("report has %q:\n%s", n, msg)
				}
			}
		})
	}
}

// TestModuleNote_TellsModuleReportsFromCompileErrors: vet's "could not
// import … (open : …)", a package the go command could not load, counts as
// a module problem; a type error does not, and a report with both is not
// one of module problems only.
func TestModuleNote_TellsModuleReportsFromCompileErrors(t *testing.T) {
	const (
		notLoaded = "vet: ../warren/framework/reqmeta/reqmeta.go:18:2: could not import google.golang.org/grpc (open : no such file or directory)\n"
		typeErr   = "services/payment/service.go:9:2: undefined: z\n"
	)
	for _, c := range []struct {
		out        string
		note, only bool
	}{
		{notLoaded, true, true},
		{typeErr, false, false},
		{notLoaded + typeErr, true, false},
		{"go: updates to go.mod needed; to update it:\n\tgo mod tidy\n", true, true},
	} {
		note, only := moduleNote("/shop", c.out)
		if (note != "") != c.note || only != c.only {
			t.Errorf("%q: note %q, only %v; want a note: %v, only: %v", c.out, note, only, c.note, c.only)
		}
	}
}
