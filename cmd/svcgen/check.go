package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
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

// typecheck compiles the services gen just wrote (`go build`, binaries
// discarded) and turns a failure into a message that says which method
// drifted and what to change.
func typecheck(root string, rels []string) error {
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
	args := []string{"build", "-o", tmp + string(os.PathSeparator)}
	for _, r := range rels {
		args = append(args, "./"+r+"/...")
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("type-check with the go command: %w (skip it with --no-check)", err)
	}
	var b strings.Builder
	b.WriteString("the generated code was written, but the service does not compile:\n")
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if strings.HasPrefix(l, "# ") {
			continue
		}
		b.WriteString("  " + strings.TrimSpace(l) + "\n")
	}
	for _, m := range implementsRE.FindAllStringSubmatch(string(out), -1) {
		fmt.Fprintf(&b, "%s: %s no longer implements Service (%s): the generated code follows the interface, and svcgen never rewrites your methods; change the method's signature to the `want` line above, or the interface back to the `have` line\n", m[1], m[2], m[3])
	}
	return errDrift{strings.TrimRight(b.String(), "\n")}
}
