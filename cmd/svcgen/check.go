package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// errDrift is gen's report that a service it wrote does not compile:
// usually an implementation whose method no longer matches the interface.
type errDrift struct{ msg string }

func (e errDrift) Error() string { return e.msg }

// implementsRE finds the compiler's "does not implement Service" report
// and the method it names.
var implementsRE = regexp.MustCompile(`(\S+\.go:\d+):\d+: .*?(\*?\w+) does not implement Service \((.*?)\)`)

// testFileRE finds a test file the compiler (through vet) reports, and
// a method of the generated client it names as missing.
var (
	testFileRE  = regexp.MustCompile(`(\S+_test\.go):(\d+):\d+: (.*)`)
	noMethodRE  = regexp.MustCompile(`has no field or method (\w+)`)
	undefinedRE = regexp.MustCompile(`undefined: \w+\.(\w+)`)
)

// typecheck compiles the services gen just wrote (`go build`, binaries
// discarded), then their tests (`go vet -buildtag`: the packages and
// their tests type-checked, no test binary linked nor run, and none of
// vet's other reports, which are `make test`'s business), and turns a
// failure into a message that says which method drifted, or which test
// file, and what to change. wrote: whether this gen run wrote each
// service's generated code (by rel); one it did not write was up to date,
// and the message says so.
func typecheck(root string, rels []string, wrote map[string]bool) error {
	if len(rels) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp("", "svcgen-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var pkgs []string
	for _, r := range rels {
		pkgs = append(pkgs, "./"+r+"/...")
	}
	out, err := runGo(ctx, root, append([]string{"build", "-o", tmp + string(os.PathSeparator)}, pkgs...)...)
	if err != nil {
		return err
	}
	if out != "" {
		return buildDrift(root, out, wrote)
	}
	out, err = runGo(ctx, root, append([]string{"vet", "-buildtag"}, pkgs...)...)
	if err != nil || out == "" {
		return err
	}
	return testDrift(root, out, wrote)
}

// genState opens the report of a failed check: what this gen run did to
// the generated code of the services the report names (all of them when
// it names none: only files outside the project fail). A service whose
// code it did not write was up to date, so its failure was there before
// the run.
func genState(root, out string, wrote map[string]bool) string {
	var written, current []string
	for _, rel := range failing(root, out, slices.Sorted(maps.Keys(wrote))) {
		if wrote[rel] {
			written = append(written, rel)
		} else {
			current = append(current, rel)
		}
	}
	switch {
	case len(current) == 0:
		return "the generated code was written"
	case len(written) == 0:
		return "the generated code is up to date"
	}
	return fmt.Sprintf("the generated code of %s was written and that of %s is up to date", strings.Join(written, ", "), strings.Join(current, ", "))
}

// failing are the services of rels with a file in the compiler's report;
// all of rels when it names none of theirs.
func failing(root, out string, rels []string) []string {
	var named []string
	for _, rel := range rels {
		for _, l := range strings.Split(out, "\n") {
			m := compilerFileRE.FindStringSubmatch(strings.TrimSpace(l))
			if m == nil {
				continue
			}
			file := m[1]
			if !filepath.IsAbs(file) {
				file = filepath.Join(root, file) // the go command ran in root
			}
			if r, err := filepath.Rel(root, file); err == nil && strings.HasPrefix(filepath.ToSlash(r), rel+"/") {
				named = append(named, rel)
				break
			}
		}
	}
	if len(named) == 0 {
		return rels
	}
	return named
}

// buildDrift is the message for services that do not compile: the
// compiler's report, what to do about a method that drifted from the
// interface, and which failing files are not the project's at all.
func buildDrift(root, out string, wrote map[string]bool) error {
	notes, why := causes(root, out, "it imports", "it needs")
	var b strings.Builder
	b.WriteString(genState(root, out, wrote) + ", but the service does not compile" + why + ":\n")
	writeCompilerLines(&b, out)
	for _, m := range implementsRE.FindAllStringSubmatch(out, -1) {
		fmt.Fprintf(&b, "%s: %s no longer implements Service (%s): the generated code follows the interface, and svcgen never rewrites your methods; change the method's signature to the `want` line above, or the interface back to the `have` line\n", m[1], m[2], m[3])
	}
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	return errDrift{strings.TrimRight(b.String(), "\n")}
}

// testDrift is the message for tests that no longer compile although the
// service does: a test of a method removed from (or changed in) the
// interface. svcgen's own tests (*_gen_test.go) were just rewritten to
// follow the interface; the others — conformance_test.go too, which
// `svcgen new` wrote once — are the user's, and gen never edits them.
// A package only tests import can fail to compile outside the project
// too: such files are named as not the project's.
func testDrift(root, out string, wrote map[string]bool) error {
	notes, why := causes(root, out, "they import", "they need")
	var b strings.Builder
	b.WriteString(genState(root, out, wrote) + " and the service builds, but its tests do not compile" + why + ":\n")
	writeCompilerLines(&b, out)
	said := map[string]bool{}
	for _, m := range testFileRE.FindAllStringSubmatch(out, -1) {
		file, line, msg := m[1], m[2], m[3]
		if said[file] || strings.HasSuffix(file, "_gen_test.go") {
			continue
		}
		said[file] = true
		what := "it no longer compiles against the service"
		if mm := noMethodRE.FindStringSubmatch(msg); mm != nil {
			what = "it calls " + mm[1] + ", which the service no longer has"
		} else if mm := undefinedRE.FindStringSubmatch(msg); mm != nil {
			what = "it uses " + mm[1] + ", which the service no longer declares"
		}
		fmt.Fprintf(&b, "%s:%s: %s: this test file is yours (`svcgen new` wrote it once; gen never rewrites or deletes your code), so change or delete the tests of what the interface dropped or changed; `go vet` then passes\n", file, line, what)
	}
	for _, n := range notes {
		b.WriteString(n + "\n")
	}
	return errDrift{strings.TrimRight(b.String(), "\n")}
}

// runGo runs the go command in root: its output when it failed as a
// compiler does, "" when it succeeded.
func runGo(ctx context.Context, root string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		return "", nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", fmt.Errorf("type-check with the go command: %w (skip it with --no-check)", err)
	}
	if len(out) == 0 {
		return "", fmt.Errorf("go %s: %w (skip it with --no-check)", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// writeCompilerLines copies the go command's report, indented, without
// its "# package" headers.
func writeCompilerLines(b *strings.Builder, out string) {
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if strings.HasPrefix(l, "# ") || strings.TrimSpace(l) == "" {
			continue
		}
		b.WriteString("  " + strings.TrimPrefix(strings.TrimSpace(l), "vet: ") + "\n")
	}
}
