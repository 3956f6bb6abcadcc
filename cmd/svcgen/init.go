package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
)

func (c *cli) init(args []string) error {
	// init makes a new project rather than working in one: no --root,
	// which it would otherwise take as an unknown flag.
	for _, a := range args {
		if a == "--" {
			break
		}
		if n, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); n == "root" && strings.HasPrefix(a, "-") {
			return usageErr("init takes no --root: it creates a new project directory, named after MODULE or given with --dir DIR")
		}
	}
	fs := c.flagSet("init", "MODULE [flags]",
		"Creates a project for Warren services in a new directory: go.mod (the\nmodule MODULE, requiring Warren, with svcgen and meshup as tools), a\nMakefile (make up runs every service on an embedded etcd; make test),\ndeploy/compose (both registry profiles), a README and .gitignore. Then\n`go tool svcgen new NAME` inside it adds services.")
	dir := fs.String("dir", "", "directory to create (default: the last element of MODULE, under the working directory); must not exist or be empty")
	version := fs.String("warren", "", "Warren version to require, e.g. v0.4.0 (default: the version this svcgen was built from)")
	replace := fs.String("replace", "", "path of a Warren checkout to use instead of a published version (a replace directive)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usageErr("missing the module path (svcgen init example.com/shop)")
	case len(pos) > 1:
		return usageErr("one module at a time; got %q", pos)
	}
	mod := pos[0]
	if *replace != "" {
		abs, err := filepath.Abs(*replace)
		if err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(abs, "go.mod")); err != nil {
			return usageErr("--replace %s: no go.mod there; want the directory of a Warren checkout", *replace)
		}
		*replace = abs
		if *version == "" {
			*version = "v0.0.0-00010101000000-000000000000"
		}
	}
	if *version == "" {
		*version = ownVersion()
		if *version == "" {
			return usageErr("this svcgen was built from a checkout and does not know which Warren version to require; pass --warren vX.Y.Z, or --replace PATH to use a checkout")
		}
	}
	target := *dir
	if target == "" {
		target = path.Base(mod)
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(c.wd, target)
	}
	files, err := gen.Init(gen.InitOptions{Module: mod, Version: *version, Replace: *replace})
	if err != nil {
		return usageErr("%v", err)
	}
	entries, err := os.ReadDir(target)
	switch {
	case err == nil && len(entries) > 0:
		return fmt.Errorf("%s exists and is not empty; svcgen init creates a new project (pick another --dir)", target)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	}
	// An empty directory given as --dir goes, for createDir to rename the
	// project there, and comes back if that fails: it is the user's.
	var empty os.FileInfo
	var link string // --dir is a symlink to an empty directory
	if err == nil {
		if empty, err = os.Lstat(target); err != nil {
			return err
		}
		if empty.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(target); err != nil {
				return err
			}
		}
		if err := os.Remove(target); err != nil {
			return fmt.Errorf("make room for the project: %w", err)
		}
	}
	base := filepath.Base(target)
	placed := map[string][]byte{}
	for p, b := range files {
		placed[base+"/"+p] = b
	}
	if err := createDir(filepath.Dir(target), base, placed); err != nil {
		if empty != nil {
			err = errors.Join(err, restoreDir(target, empty, link))
		}
		return fmt.Errorf("create the project: %w", err)
	}
	// The path as the user gave it when absolute; relative to the working
	// directory otherwise (../../tmp/shop for /tmp/shop helped no one).
	rel := *dir
	if !filepath.IsAbs(rel) {
		if rel, err = filepath.Rel(c.wd, target); err != nil {
			rel = target
		}
	}
	fmt.Fprintf(c.stdout, "created %s (module %s):\n", rel, mod)
	for _, p := range slices.Sorted(mapKeys(files)) {
		fmt.Fprintf(c.stdout, "  %s\n", p)
	}
	// The first tidy comes before go tool: the new go.mod has no go.sum,
	// and go tool svcgen would fail on every missing checksum.
	fmt.Fprintf(c.stdout, "Next:\n  cd %s\n  go mod tidy\n  go tool svcgen new payment\n  go mod tidy\n  make test\n  make up\n", rel)
	return nil
}

// restoreDir makes the empty directory init removed again, with its
// owner, mode and times, or the symlink to it (link) with its owner.
// Only root can give a file away, so init run by someone else cannot put
// back an owner other than its own (a directory another user made in a
// parent you may write to): the directory is back all the same, with its
// mode and times, and errOwnerNotPutBack says whose it is now.
func restoreDir(path string, fi os.FileInfo, link string) error {
	if link != "" {
		if err := os.Symlink(link, path); err != nil {
			return fmt.Errorf("put back the symlink %s: %w", path, err)
		}
		return restoreOwner(path, fi)
	}
	if err := os.Mkdir(path, fi.Mode().Perm()); err != nil {
		return fmt.Errorf("put back the empty %s: %w", path, err)
	}
	// The owner before the mode: a chown may clear set-id bits.
	owner := restoreOwner(path, fi)
	// Not narrowed by the umask, and with the setgid and sticky bits a
	// shared directory has (Perm drops them).
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := os.Chmod(path, mode); err != nil {
		return errors.Join(owner, fmt.Errorf("put back the mode of %s: %w", path, err))
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		return errors.Join(owner, fmt.Errorf("put back the times of %s: %w", path, err))
	}
	return owner
}

// errOwnerNotPutBack is restoreDir's report that the directory (or
// symlink) is back but not with its owner. It comes after init's own
// error, which it does not hide, and deliberately does not unwrap to the
// chown's error: errors.Is(err, fs.ErrPermission) on init's error stays
// about what made init fail, not about this.
type errOwnerNotPutBack struct {
	path     string
	uid, gid uint32
	err      error
}

func (e errOwnerNotPutBack) Error() string {
	return fmt.Sprintf("%s is back, but owned by the user svcgen ran as, not by %d:%d as it was (%v; only root can give a file to another user)", e.path, e.uid, e.gid, e.err)
}

// mainVersion is the Warren version bi was built from when Warren is
// its main module (go install or go run of …@version); "" when another
// module is, or for a build in a checkout ("(devel)").
func mainVersion(bi *debug.BuildInfo) string {
	if bi.Main.Path != gen.FrameworkModule || bi.Main.Version == "(devel)" {
		return ""
	}
	return bi.Main.Version
}

// ownVersion is the Warren version this svcgen was built from: its own
// module's when installed with `go install …@version`, or the required
// one when run as a tool of another module; "" from a checkout.
func ownVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	if bi.Main.Path == gen.FrameworkModule {
		return mainVersion(bi)
	}
	for _, d := range bi.Deps {
		if d.Path == gen.FrameworkModule && d.Version != "" && d.Version != "(devel)" {
			return d.Version
		}
	}
	return ""
}
