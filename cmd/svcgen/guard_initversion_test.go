package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// docs/svcgen.md: "A svcgen binary built from a checkout (`go build -o
// bin/svcgen ./cmd/svcgen`) refuses `init` without `--replace` or
// `--warren`, as it does not know which version to require." A test
// binary is such a build (its main module is Warren at "(devel)"), so
// init with neither flag must exit 2 and create nothing, and either flag
// makes it work.
func TestInit_FromACheckoutBuildNeedsWarrenOrReplace(t *testing.T) {
	if v := ownVersion(); v != "" {
		t.Skipf("this binary knows its Warren version (%s); the case is a build from a checkout", v)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	checkout, err := filepath.Abs(filepath.Join(wd, "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "shop")
	code, out, errOut := runCLI(t, "init", "example.com/shop", "--dir", dir)
	if code != exitUsage || !strings.Contains(errOut, "does not know which Warren version to require") ||
		!strings.Contains(errOut, "--warren") || !strings.Contains(errOut, "--replace") {
		t.Fatalf("init without --warren or --replace: exit %d, want %d naming both flags\n%s%s", code, exitUsage, out, errOut)
	}
	if entries, err := os.ReadDir(parent); err != nil || len(entries) != 0 {
		t.Fatalf("init that was refused wrote %v (%v)", entries, err)
	}
	for _, args := range [][]string{
		{"init", "example.com/shop", "--dir", filepath.Join(parent, "a"), "--warren", "v0.4.0"},
		{"init", "example.com/shop", "--dir", filepath.Join(parent, "b"), "--replace", checkout},
	} {
		if code, out, errOut := runCLI(t, args...); code != exitOK {
			t.Errorf("%q: exit %d\n%s%s", args, code, out, errOut)
		}
	}
}
