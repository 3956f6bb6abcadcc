package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The tests in this file guard that svcgen's messages name the command
// to run as it runs in the project (`go tool svcgen` in a project that
// `svcgen init` made, when no svcgen is on PATH) and the service or file
// concerned, rather than a placeholder such as NAME or a bare `svcgen`.

// runAsTool runs svcgen in wd as `go tool svcgen` runs it: no svcgen on
// PATH, whatever this machine has, so the hints name the project's tool.
func runAsTool(wd string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	notFound := func(string) (string, error) { return "", exec.ErrNotFound }
	c := &cli{stdout: &out, stderr: &errb, wd: wd, lookPath: notFound}
	code := c.run(args)
	return code, out.String(), errb.String()
}

// TestNew_AKeptServiceNamesTheGenThatCompletesIt: when new cannot put
// back a deploy file (the user saved it after new replaced it) and keeps
// the service, its message tells the user to run gen for that service,
// as svcgen runs in the project; the command it names then completes
// the service's entries in the other deploy files. Fails with the old
// message, which said `svcgen gen payment` in a project where svcgen is
// `go tool svcgen`.
func TestNew_AKeptServiceNamesTheGenThatCompletesIt(t *testing.T) {
	root := deployProject(t)
	const mine = "# the user's line\n"
	compose := filepath.Join(root, filepath.FromSlash(deployFiles[0]))
	n := 0
	renameFile = func(from, to string) error {
		if n++; n == 2 { // compose.yaml is replaced; the user saves it, and the next rename fails
			b, err := os.ReadFile(compose)
			if err != nil {
				return err
			}
			if err := os.WriteFile(compose, append(b, mine...), 0o644); err != nil {
				return err
			}
			return os.ErrPermission
		}
		return os.Rename(from, to)
	}
	t.Cleanup(func() { renameFile = os.Rename })
	code, out, errOut := runAsTool(root, "new", "payment")
	renameFile = os.Rename
	const hint = "run `go tool svcgen gen payment` to complete its entries"
	if code != exitFailed || !strings.Contains(errOut, hint) {
		t.Fatalf("new: exit %d\n%s%s\nwant 1 and %q", code, out, errOut, hint)
	}
	for _, f := range deployFiles[1:] {
		if b, _ := os.ReadFile(filepath.Join(root, filepath.FromSlash(f))); bytes.Contains(b, []byte("payment")) {
			t.Fatalf("%s lists payment before the gen (the injected failure came too late):\n%s", f, b)
		}
	}
	if code, out, errOut := runAsTool(root, "gen", "payment"); code != exitOK {
		t.Fatalf("the gen the message names: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range deployFiles {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil || !bytes.Contains(b, []byte("payment")) {
			t.Errorf("after the gen the message names, %s does not list payment (%v)", f, err)
		}
	}
	if b, _ := os.ReadFile(compose); !bytes.HasSuffix(b, []byte(mine)) {
		t.Errorf("compose.yaml lost the user's save:\n%s", b)
	}
}

// TestGen_VerifyNamesTheGenAsItRunsHere: gen --verify's report (a CI
// step's output) names the gen that brings the files up to date as the
// project runs it. Fails with the old message, which said svcgen gen
// whatever svcgen was here.
func TestGen_VerifyNamesTheGenAsItRunsHere(t *testing.T) {
	root := initProject(t)
	if code, out, errOut := runAsTool(root, "new", "payment"); code != exitOK {
		t.Fatalf("new: exit %d\n%s%s", code, out, errOut)
	}
	addMethod(t, filepath.Join(root, "services", "payment", "service.go"),
		"\tRefund(ctx context.Context, req RefundRequest) (RefundResponse, error)")
	code, out, errOut := runAsTool(root, "gen", "--verify")
	if want := "run `go tool svcgen gen` and commit what it writes"; code != exitFailed || !strings.Contains(errOut, want) {
		t.Errorf("gen --verify: exit %d\n%s%s\nwant 1 and %q", code, out, errOut, want)
	}
}

// TestGen_AServiceWithoutServiceGoIsNamed: gen of a directory under
// services/ without a service.go says which file it reads, naming the
// service. Fails with the old services/NAME/service.go.
func TestGen_AServiceWithoutServiceGoIsNamed(t *testing.T) {
	root := initProject(t)
	if err := os.MkdirAll(filepath.Join(root, "services", "payment"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAsTool(root, "gen", "payment")
	if want := "reads the Service interface from services/payment/service.go"; code != exitFailed || !strings.Contains(errOut, want) {
		t.Errorf("gen payment without service.go: exit %d\n%s%s\nwant 1 and %q", code, out, errOut, want)
	}
}
