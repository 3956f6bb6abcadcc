package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/warren-mesh/warren/cmd/svcgen/internal/gen"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the service has problems, or a file could not be written
	exitUsage   = 2 // the command line is wrong
	docsPointer = "Warren's docs/svcgen.md"
)

const usage = `svcgen writes the endpoint, HTTP transport and client code of Warren
services from their Service interface, so you write business methods only.

Usage:
  svcgen init MODULE [--dir DIR] [--warren VERSION | --replace PATH]
  svcgen new NAME [--port N] [--registry NAME] [--registry-package PATH] [--methods "A,B"] [--grpc] [--dry-run]
  svcgen gen [NAME | ./services/NAME]... [--dry-run | --verify] [--no-check] [--protoc] [--renumber]
  svcgen list
  svcgen help [COMMAND]

Commands:
  init   create a project (a Go module) for Warren services: go.mod, a
         Makefile with make up and make test, deploy/compose, a README
  new    create services/NAME: service.go (yours), generated *_gen.go files,
         cmd/NAME/main.go and tests; add NAME to deploy/compose
  gen    rewrite the *_gen.go files of the named services (all when none is
         named) from service.go, appending stubs for methods the
         implementation lacks; never touches anything else
  list   show the services and their routes

new, gen and list take --root DIR (default: the nearest directory above the
working directory with a go.mod); init creates a new directory (--dir). "svcgen COMMAND --help" shows a command's
flags; ` + docsPointer + ` has the details.

Exit status: 0 done, 1 the service has problems (listed as file:line) or a
file could not be written, 2 the command line is wrong.
`

// errUsage marks an error whose message is about the command line.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

func usageErr(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

// cli is one invocation.
type cli struct {
	stdout, stderr io.Writer
	wd             string
	// lookPath finds a command on PATH (exec.LookPath), for the hints
	// that name svcgen.
	lookPath func(string) (string, error)
	// executable and buildInfo say how this svcgen was built and where
	// it runs from (os.Executable, debug.ReadBuildInfo), for the hints
	// in a project that lists no svcgen tool; nil: not known.
	executable func() (string, error)
	buildInfo  func() (*debug.BuildInfo, bool)
	// typecheck compiles the services gen wrote (the typecheck func);
	// nil in tests of the CLI alone, whose fake repositories have no
	// framework to compile against. wrote: by service (rel), whether gen
	// wrote its generated code (deploy files do not count).
	typecheck func(root string, rels []string, wrote map[string]bool) error
}

// run runs svcgen with args (without the program name) and returns the
// exit code.
func run(args []string, stdout, stderr io.Writer) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintf(stderr, "svcgen: %v\n", err)
		return exitFailed
	}
	c := &cli{stdout: stdout, stderr: stderr, wd: wd, lookPath: exec.LookPath, typecheck: typecheck,
		executable: os.Executable, buildInfo: debug.ReadBuildInfo}
	return c.run(args)
}

// run runs one command line.
func (c *cli) run(args []string) int {
	stdout, stderr := c.stdout, c.stderr
	var err error
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "init":
		err = c.init(rest)
	case "new":
		err = c.new(rest)
	case "gen":
		err = c.gen(rest)
	case "list":
		err = c.list(rest)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" {
			return c.run([]string{rest[0], "--help"})
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "svcgen: unknown command %q; the commands are init, new, gen, list and help (svcgen help)\n", cmd)
		return exitUsage
	}
	var ue errUsage
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "svcgen %s: %v\nRun `svcgen %s --help` for usage.\n", cmd, err, cmd)
		return exitUsage
	}
	var drift errDrift
	if errors.As(err, &drift) {
		fmt.Fprintf(stderr, "svcgen %s: %v\n", cmd, err)
		return exitFailed
	}
	var probs gen.Problems
	if errors.As(err, &probs) {
		fmt.Fprintf(stderr, "svcgen %s: nothing was written; fix these first:\n", cmd)
		for _, p := range probs {
			fmt.Fprintf(stderr, "  %s\n", p)
		}
		fmt.Fprintf(stderr, "Supported signatures and annotations: %s\n", docsPointer)
		return exitFailed
	}
	fmt.Fprintf(stderr, "svcgen %s: %v\n", cmd, err)
	return exitFailed
}

// flags builds a command's flag set with --root and its usage text.
func (c *cli) flags(name, synopsis, about string) (*flag.FlagSet, *string) {
	fs := c.flagSet(name, synopsis, about)
	root := fs.String("root", "", "repository root (default: nearest directory with a go.mod above the working directory)")
	return fs, root
}

// flagSet builds a command's flag set, without --root, and its usage text.
func (c *cli) flagSet(name, synopsis, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("svcgen "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(c.stdout, "Usage: svcgen %s %s\n\n%s\n\nFlags:\n", name, synopsis, about)
		fs.SetOutput(c.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parse parses flags that may come before, between or after the
// positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err // fs.Parse has printed the usage
			}
			return nil, usageErr("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// repo is the repository svcgen works in.
type repo struct {
	root, module string
}

func (c *cli) repo(flagRoot string) (repo, error) {
	root := flagRoot
	if root == "" {
		for dir := c.wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				root = dir
				break
			}
			if filepath.Dir(dir) == dir {
				return repo{}, fmt.Errorf("no go.mod in %s or above it; run svcgen inside the repository or pass --root", c.wd)
			}
		}
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return repo{}, err
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return repo{}, fmt.Errorf("read the module: %w", err)
	}
	// The module line as the go command reads it: a trailing comment or
	// quotes are not part of the path.
	if m := modfile.ModulePath(b); m != "" {
		return repo{root: root, module: m}, nil
	}
	return repo{}, fmt.Errorf("%s has no module line", filepath.Join(root, "go.mod"))
}

// self is how the user runs svcgen here, for hints: the command on PATH,
// the module's tool, go run in Warren's repository, or, in a project
// that lists no tool, the binary that ran (or the go run PKG@VERSION that
// built it). A go command is given the project's
// directory (go -C) when the one svcgen runs in would not do: outside the
// project (svcgen run with --root), where the module's tool is unknown,
// or, for ./cmd/svcgen, anywhere but the root.
func (c *cli) self(r repo) string {
	if _, err := c.lookPath("svcgen"); err == nil {
		return "svcgen"
	}
	inside := within(c.wd, r.root)
	goIn := func(rest string, ok bool) string {
		if ok {
			return "go " + rest
		}
		return "go -C " + shellWord(r.root) + " " + rest
	}
	if b, err := os.ReadFile(filepath.Join(r.root, "go.mod")); err == nil && bytes.Contains(b, []byte(gen.FrameworkModule+"/cmd/svcgen")) {
		return goIn("tool svcgen", inside)
	}
	if r.module == gen.FrameworkModule {
		return goIn("run ./cmd/svcgen", filepath.Clean(c.wd) == filepath.Clean(r.root))
	}
	// A project of the user's own that lists no tool: `go run` of the
	// package inside it needs go.sum entries for svcgen's own
	// dependencies, which the project's code does not import. Name what
	// ran instead: this binary where it stays (installed, or built by
	// hand), or, for the throwaway binary of `go run PKG@VERSION`, that
	// command, which needs nothing of the project.
	if exe, ok := c.installed(); ok {
		return shellWord(exe)
	}
	if v, ok := c.frameworkVersion(); ok {
		return "go run " + gen.FrameworkModule + "/cmd/svcgen@" + v
	}
	return goIn("run "+gen.FrameworkModule+"/cmd/svcgen", inside)
}

// installed returns the path of the running svcgen when it is a binary
// that stays where it is: not one the go command built for the run, into
// a temporary directory (go run: .../go-build123/b001/exe/svcgen, removed
// when svcgen exits) or its build cache (go tool: .../go-build/ab/…-d/svcgen,
// trimmed when unused).
func (c *cli) installed() (string, bool) {
	if c.executable == nil {
		return "", false
	}
	exe, err := c.executable()
	if err != nil || exe == "" || !filepath.IsAbs(exe) {
		return "", false
	}
	for _, dir := range strings.Split(filepath.ToSlash(filepath.Dir(exe)), "/") {
		if strings.HasPrefix(dir, "go-build") {
			return "", false
		}
	}
	return exe, true
}

// frameworkVersion returns the released version of Warren this svcgen
// was built from, when it was built as Warren's own main module (go run
// or go install of PKG@VERSION): a version `go run PKG@VERSION` fetches
// again. A build inside a module (a devel version) gives none.
func (c *cli) frameworkVersion() (string, bool) {
	if c.buildInfo == nil {
		return "", false
	}
	bi, ok := c.buildInfo()
	if !ok || bi == nil {
		return "", false
	}
	v := mainVersion(bi)
	if !semver.IsValid(v) || semver.Build(v) != "" {
		return "", false // none, or a local build's "+dirty"
	}
	return v, true
}

// within reports whether dir is root or below it.
func within(dir, root string) bool {
	rel, err := filepath.Rel(root, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// shellWord quotes s for a command line a user pastes, when it needs it.
func shellWord(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fileWrite is one file gen replaces.
type fileWrite struct {
	path string
	data []byte
	// old is the content the new one was made from (existed: there was a
	// file): commit replaces the file only while it still holds exactly
	// that, so an edit saved while svcgen ran is not lost.
	old     []byte
	existed bool
}

// errChanged is commit's refusal: a file changed on disk after svcgen read
// it (the user's editor saved it, or another svcgen run wrote it).
type errChanged struct{ path string }

func (e errChanged) Error() string {
	return fmt.Sprintf("%s changed while svcgen ran, so svcgen did not replace it (your change is kept); run the command again", e.path)
}

// unchanged reports whether the file at w.path still holds w.old.
func (w fileWrite) unchanged() error {
	cur, err := os.ReadFile(w.path)
	switch {
	case errors.Is(err, os.ErrNotExist) && !w.existed:
		return nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return err
	case err != nil || !w.existed || !bytes.Equal(cur, w.old):
		return errChanged{w.path}
	}
	return nil
}

// renameFile is os.Rename; tests replace it to interrupt a commit part-way.
var renameFile = os.Rename

// commit writes every file to a temporary file beside it first and then
// renames them all, so a failed write changes nothing. A file that changed
// since it was read is never replaced: checked before anything is
// written, and again just before its own rename. A rename that fails
// leaves the files renamed before it new (gen's next run completes them),
// and says so with errPartWay.
func commit(writes []fileWrite) error { return commitWrites(writes, false) }

// errPartWay is commit's failure after it replaced some of the files
// (done of of): the project is part new, part old, until gen runs again.
type errPartWay struct {
	err      error
	done, of int
}

func (e errPartWay) Error() string {
	return fmt.Sprintf("%v; %d of the %d files were replaced before it, the others not", e.err, e.done, e.of)
}
func (e errPartWay) Unwrap() error { return e.err }

// commitAll is commit that puts the files it already replaced back as
// they were when a later one cannot be replaced: svcgen new's deploy
// files, where one listing a service that new then removes would make
// the next `new NAME` refuse.
func commitAll(writes []fileWrite) error { return commitWrites(writes, true) }

func commitWrites(writes []fileWrite, undo bool) error {
	for _, w := range writes {
		if err := w.unchanged(); err != nil {
			return err
		}
	}
	tmps := make([]string, len(writes))
	var olds []string // undo: the previous content of each file, kept before its rename
	cleanup := func() {
		for _, ts := range [][]string{tmps, olds} {
			for _, t := range ts {
				if t != "" {
					os.Remove(t)
				}
			}
		}
	}
	for i, w := range writes {
		if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
			cleanup()
			return err
		}
		f, err := os.CreateTemp(filepath.Dir(w.path), ".svcgen-*.tmp")
		if err != nil {
			cleanup()
			return err
		}
		tmps[i] = f.Name()
		_, werr := f.Write(w.data)
		if err := errors.Join(werr, f.Chmod(0o644), f.Close()); err != nil {
			cleanup()
			return fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	if undo {
		var err error
		if olds, err = keepOld(writes); err != nil {
			cleanup()
			return err
		}
	}
	for i, w := range writes {
		err := w.unchanged()
		if err == nil {
			if err = renameFile(tmps[i], w.path); err != nil {
				err = fmt.Errorf("replace %s: %w", w.path, err)
			}
		}
		if err != nil {
			if !undo && i > 0 {
				err = errPartWay{err: err, done: i, of: len(writes)}
			}
			if undo && i > 0 {
				if uerr := putBack(writes[:i], olds); uerr != nil {
					err = errors.Join(err, uerr)
				} else {
					err = fmt.Errorf("%w; the files replaced before it were put back as they were", err)
				}
			}
			cleanup()
			return err
		}
		tmps[i] = ""
	}
	cleanup() // the kept old contents
	return nil
}

func mapKeys[V any](m map[string]V) iter.Seq[string] {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
