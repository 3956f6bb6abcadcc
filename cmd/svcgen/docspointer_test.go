package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestNew_PointsAtWarrensDocsInAProjectOfItsOwn: a project of `svcgen
// init` has no docs/ directory, so the pointers svcgen leaves there — the
// generated service.go's header, the usage text, the line after a list
// of problems, a missing Service interface — name the page as Warren's
// (the project's README says "See Warren's docs/svcgen.md" too). They
// used to say docs/svcgen.md, a path that is not in the project.
func TestNew_PointsAtWarrensDocsInAProjectOfItsOwn(t *testing.T) {
	checkout, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	proj := filepath.Join(t.TempDir(), "shop")
	if code, out, errOut := runCLI(t, "init", "example.com/shop", "--dir", proj, "--replace", checkout); code != 0 {
		t.Fatalf("svcgen init: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "new", "payment", "--root", proj); code != 0 {
		t.Fatalf("svcgen new: exit %d\n%s%s", code, out, errOut)
	}
	svc := filepath.Join(proj, "services", "payment", "service.go")
	src, err := os.ReadFile(svc)
	if err != nil {
		t.Fatal(err)
	}
	_, usage, _ := runCLI(t, "--help")
	// A problem, then the pointer after the list.
	bad := strings.Replace(string(src), "\tHello(ctx context.Context, req HelloRequest) (HelloResponse, error)", "\tHello(ctx context.Context, req HelloRequest) (*HelloResponse, error)", 1)
	if err := os.WriteFile(svc, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, problems := runCLI(t, "gen", "payment", "--root", proj)
	// No Service interface at all.
	if err := os.WriteFile(svc, []byte("package payment\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, noService := runCLI(t, "gen", "payment", "--root", proj)

	if _, err := os.Stat(filepath.Join(proj, "docs")); err == nil {
		t.Fatal("the project has a docs/ directory; this test assumes it has none")
	}
	bare := regexp.MustCompile(`docs/[a-z-]+\.md`)
	for what, text := range map[string]string{"service.go": string(src), "svcgen --help": usage, "gen's problems": problems, "gen without a Service": noService} {
		if !strings.Contains(text, "Warren's docs/svcgen.md") {
			t.Errorf("%s does not point at Warren's docs/svcgen.md:\n%s", what, text)
		}
		if m := bare.FindString(strings.ReplaceAll(text, "Warren's docs/", "")); m != "" {
			t.Errorf("%s points at %q, which the project does not have:\n%s", what, strings.TrimSpace(m), text)
		}
	}
}
