package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// gen says what it did to a service, then the notes about that service:
// a note explains the lines above it. (The notes came first, above the
// "wrote" lines they were about.)
func TestGen_AServicesNotesFollowWhatGenWroteOfIt(t *testing.T) {
	root := fakeRoot(t)
	if code, out, errOut := runCLI(t, "new", "pay", "--root", root); code != 0 {
		t.Fatalf("new pay: exit %d\n%s%s", code, out, errOut)
	}
	dir := filepath.Join(root, "services", "pay")
	svc := filepath.Join(dir, "service.go")
	b, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^var _ Service = .*\n`)
	if !line.Match(b) {
		t.Fatalf("services/pay/service.go has no `var _ Service = …` line:\n%s", b)
	}
	if err := os.WriteFile(svc, line.ReplaceAll(b, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "endpoint_gen.go")); err != nil {
		t.Fatal(err)
	}
	// stdout and stderr in one buffer, as a terminal shows them.
	var both bytes.Buffer
	wd, _ := os.Getwd()
	c := &cli{stdout: &both, stderr: &both, wd: wd, lookPath: exec.LookPath}
	if code := c.run([]string{"gen", "pay", "--no-check", "--root", root}); code != 0 {
		t.Fatalf("gen pay: exit %d\n%s", code, both.String())
	}
	out := both.String()
	wrote := strings.Index(out, "services/pay: wrote services/pay/endpoint_gen.go")
	note := strings.Index(out, "svcgen gen: note: ")
	if wrote < 0 || note < 0 || !strings.Contains(out[note:], "no `var _ Service = (*T)(nil)` line") {
		t.Fatalf("gen pay printed no wrote line for endpoint_gen.go or no note about the missing var _ Service line:\n%s", out)
	}
	if note < wrote {
		t.Fatalf("gen pay printed the service's note before what it wrote of it:\n%s", out)
	}
}
