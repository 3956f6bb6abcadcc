package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestInit_AFailedInitKeepsTheEmptyDirTheUserMade (review s58-r2 F6): init
// into an empty --dir removes it so the project can be renamed there;
// when the project cannot be written — here --dir is so deep that the
// project's files in the temporary directory beside it exceed PATH_MAX
// (4096 bytes with the NUL, for root too) — init exits 1 and the
// directory is back with its mode and time, or the symlink to one. Fails
// without restoreDir (the directory is gone).
func TestInit_AFailedInitKeepsTheEmptyDirTheUserMade(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("relies on Linux's PATH_MAX of 4096 bytes")
	}
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, link := range []bool{false, true} {
		// .svcgen-NAME-RANDOM beside --dir is at most 4089 bytes (made);
		// deploy/compose/compose.yaml in it at least 4108 (refused).
		dir := deepPath(t, 4070)
		real := dir
		if link {
			real = filepath.Join(t.TempDir(), "elsewhere")
			if err := os.Symlink(real, dir); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Mkdir(real, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(real, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(real, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runIn(t.TempDir(), nil, "init", "example.com/shop", "--warren", "v0.4.0", "--dir", dir)
		if code != exitFailed || !strings.Contains(errOut, "file name too long") {
			t.Errorf("init into a --dir over PATH_MAX (symlink: %v): exit %d, want %d and the write's error\n%s%s", link, code, exitFailed, out, errOut)
		}
		fi, err := os.Lstat(dir)
		switch {
		case err != nil:
			t.Errorf("symlink %v: the failed init removed the --dir the user made (%T)", link, err)
		case link:
			if to, _ := os.Readlink(dir); to != real {
				t.Errorf("--dir is now %v -> %q, want the symlink to %s", fi.Mode(), to, real)
			}
		case !fi.IsDir() || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(stamp):
			t.Errorf("--dir is now %v, %v; want a directory, 0750, %v", fi.Mode(), fi.ModTime(), stamp)
		}
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Errorf("symlink %v: --dir holds %v (%v), want nothing", link, entries, err)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), ".svcgen-*")); len(left) > 0 {
			t.Errorf("symlink %v: left behind %v", link, left)
		}
	}
}
