//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests in this file guard that a failed init puts back the owner of
// the empty --dir it removed, as root, and says so, without hiding its
// own error, when it cannot (run by another user). They fail init the way
// TestInit_AFailedInitKeepsTheEmptyDirTheUserMade does: a --dir so deep
// that the project's files beside it exceed PATH_MAX. The tests run as
// root, which may give a directory to any uid and run a process as one.

const (
	otherUID = 12345 // the user that runs init in the second test
	ownerUID = 23456 // the --dir's owner in the second test
)

// owner is the uid and gid of path itself (a symlink is not followed).
func owner(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

// TestInit_AFailedInitPutsBackTheOwnerOfTheEmptyDir: root runs init into
// an empty --dir (or a symlink to one) that belongs to 12345:12345; init
// fails and the directory, or the symlink, is back with that owner, and
// nothing is said about it. Fails without restoreOwner in restoreDir
// (the directory is back owned by root).
func TestInit_AFailedInitPutsBackTheOwnerOfTheEmptyDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give the directory to another user")
	}
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, link := range []bool{false, true} {
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
		if err := os.Lchown(dir, otherUID, otherUID); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(real, stamp, stamp); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runIn(t.TempDir(), nil, "init", "example.com/shop", "--warren", "v0.4.0", "--dir", dir)
		if code != exitFailed || !strings.Contains(errOut, "file name too long") || strings.Contains(errOut, "is back") {
			t.Errorf("init into a --dir over PATH_MAX (symlink: %v): exit %d\n%s%s\nwant %d, the write's error and no word on the owner", link, code, out, errOut, exitFailed)
		}
		if uid, gid := owner(t, dir); uid != otherUID || gid != otherUID {
			t.Errorf("symlink %v: --dir is back owned by %d:%d, want %d:%d", link, uid, gid, otherUID, otherUID)
		}
		fi, err := os.Lstat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !link && (fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(stamp)) {
			t.Errorf("--dir is back as %v, %v; want 0750, %v", fi.Mode(), fi.ModTime(), stamp)
		}
	}
}

// initAsOtherEnv names the --dir the child process of
// TestInit_AFailedInitAsAnotherUserKeepsItsOwnError runs init into.
const initAsOtherEnv = "SVCGEN_TEST_INIT_AS_OTHER_DIR"

// TestInit_AFailedInitAsAnotherUserKeepsItsOwnError: a user who is not
// root (uid 12345) runs init into an empty --dir that another user
// (23456) made in a parent the first may write to. init removes it,
// fails, and makes it again; it cannot give it back to 23456, so the
// directory is back with its mode and times but owned by 12345. init's
// error is still the write's (first, and errors.Is finds no
// fs.ErrPermission in it); a note after it says whose the directory is
// now (errOwnerNotPutBack). Fails without restoreOwner (no note: the
// owner changed without a word).
func TestInit_AFailedInitAsAnotherUserKeepsItsOwnError(t *testing.T) {
	if dir := os.Getenv(initAsOtherEnv); dir != "" {
		initAsChild(dir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run init as another user")
	}
	// The other user reaches its files through the temporary directory's
	// parents, which this test does not change.
	for d := filepath.Dir(os.TempDir()); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("another user cannot pass through %s, above the temporary directory %s (set TMPDIR elsewhere to run this test)", d, os.TempDir())
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	stamp := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	dir := deepPath(t, 4070)
	// The other user must reach --dir and write in its parent.
	for d := filepath.Dir(dir); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Dir(dir), otherUID, otherUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, ownerUID, ownerUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(dir, stamp, stamp); err != nil {
		t.Fatal(err)
	}
	bin := copyTestBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestInit_AFailedInitAsAnotherUserKeepsItsOwnError$", "-test.count=1")
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(os.Environ(), initAsOtherEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: otherUID, Gid: otherUID, Groups: []uint32{}}}
	b, err := cmd.CombinedOutput()
	out := strings.ReplaceAll(string(b), dir, "$DIR") // 4070 bytes each
	if err != nil {
		t.Fatalf("the child as uid %d: %v\n%s", otherUID, err, out)
	}
	for _, want := range []string{
		"exit 1\n",
		"is fs.ErrPermission: false\n",
		"is errOwnerNotPutBack: true\n",
		"error: create the project: ", // init's own error first
		"file name too long",
		fmt.Sprintf("$DIR is back, but owned by the user svcgen ran as, not by %d:%d", ownerUID, ownerUID),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("init as uid %d: output lacks %q:\n%s", otherUID, want, out)
		}
	}
	if i, j := strings.Index(out, "file name too long"), strings.Index(out, "is back"); i < 0 || j < i {
		t.Errorf("the note on the owner comes before init's own error:\n%s", out)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatalf("--dir is gone: %v", err)
	}
	if uid, gid := owner(t, dir); !fi.IsDir() || fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(stamp) || uid != otherUID || gid != otherUID {
		t.Errorf("--dir is back as %v, %v, %d:%d; want a directory, 0755, %v, %d:%d (the user init ran as)", fi.Mode(), fi.ModTime(), uid, gid, stamp, otherUID, otherUID)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("--dir holds %v (%v), want nothing", entries, err)
	}
}

// initAsChild is the child's part: init into dir, then what the parent
// checks, one line each.
func initAsChild(dir string) {
	c := &cli{stdout: io.Discard, stderr: io.Discard, wd: filepath.Dir(dir), lookPath: exec.LookPath}
	err := c.init([]string{"example.com/shop", "--warren", "v0.4.0", "--dir", dir})
	code := exitOK
	if err != nil {
		code = exitFailed
	}
	var note errOwnerNotPutBack
	fmt.Printf("exit %d\nis fs.ErrPermission: %v\nis errOwnerNotPutBack: %v\nerror: %v\n",
		code, errors.Is(err, fs.ErrPermission), errors.As(err, &note), err)
}

// copyTestBinary copies this test binary where another user may run it
// (the go command builds it in a directory only root may enter).
func copyTestBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "svcgen.test")
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestInit_AFailedInitPutsBackTheSetgidAndStickyBits: the empty --dir of
// a shared project area often has the setgid bit (files made in it get
// its group) and the sticky bit; a failed init makes the directory again
// with them, not only with its permission bits. Fails with restoreDir's
// old os.Chmod(path, fi.Mode().Perm()).
func TestInit_AFailedInitPutsBackTheSetgidAndStickyBits(t *testing.T) {
	dir := deepPath(t, 4070)
	const mode = fs.ModeSetgid | fs.ModeSticky | 0o770
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runIn(t.TempDir(), nil, "init", "example.com/shop", "--warren", "v0.4.0", "--dir", dir)
	if code != exitFailed || !strings.Contains(errOut, "file name too long") {
		t.Errorf("init into a --dir over PATH_MAX: exit %d, want %d and the write's error\n%s%s", code, exitFailed, out, errOut)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatalf("--dir is gone: %v", err)
	}
	if got := fi.Mode() &^ fs.ModeDir; got != mode {
		t.Errorf("--dir is back as %v, want %v", got, mode)
	}
}
