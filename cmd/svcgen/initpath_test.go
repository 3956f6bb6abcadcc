package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInit_PrintsTheDirectoryAsTheUserGaveIt: init's "created" and "cd"
// lines name an absolute --dir as given, not relative to the working
// directory (report u6 R1: /tmp/shop came out as ../../tmp/shop), and a
// relative one (or the default, the module's last element) relative to
// the working directory, as before.
func TestInit_PrintsTheDirectoryAsTheUserGaveIt(t *testing.T) {
	base := t.TempDir()
	wd := filepath.Join(base, "a", "b")
	if err := os.MkdirAll(wd, 0o755); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(t.TempDir(), "abs-shop")
	for _, c := range []struct {
		dir, want, at string // --dir ("" none), the path printed, where the project is
	}{
		{abs, abs, abs},
		{"../rel-shop", "../rel-shop", filepath.Join(base, "a", "rel-shop")},
		{"", "shop", filepath.Join(wd, "shop")},
	} {
		args := []string{"init", "example.com/shop", "--warren", "v0.4.0"}
		if c.dir != "" {
			args = append(args, "--dir", c.dir)
		}
		code, out, errOut := runIn(wd, nil, args...)
		if code != exitOK {
			t.Errorf("svcgen %q in %s: exit %d\n%s%s", args, wd, code, out, errOut)
			continue
		}
		for _, want := range []string{"created " + c.want + " (module example.com/shop):\n", "Next:\n  cd " + c.want + "\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("svcgen %q: output lacks %q:\n%s", args, want, out)
			}
		}
		if _, err := os.Stat(filepath.Join(c.at, "go.mod")); err != nil {
			t.Errorf("svcgen %q: no project at %s: %v", args, c.at, err)
		}
	}
}
