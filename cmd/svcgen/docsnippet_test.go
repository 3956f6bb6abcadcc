package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDocs_GRPCClientLineCompiles: docs/svcgen.md's line on calling a
// gRPC service, with NAME the demo's user and d the build function's
// *bootstrap.Deps, compiles. It once passed d itself where the client
// wants d.Discovery (a *bootstrap.Deps is no registry.Discovery). The
// snippet is compiled in place through an overlay: nothing is written
// into the repository.
func TestDocs_GRPCClientLineCompiles(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "svcgen.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("To call a gRPC service, use `([^`]+)`").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/svcgen.md has no line \"To call a gRPC service, use `…`\"")
	}
	expr := strings.ReplaceAll(string(m[1]), "NAME.", "user.")
	src := `package docsnip

import (
	"context"

	"github.com/warren-mesh/warren/framework/bootstrap"
	"github.com/warren-mesh/warren/services/user"
)

func build(ctx context.Context, d *bootstrap.Deps) {
	c, err := ` + expr + `
	_, _ = c, err
}
`
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	snip := filepath.Join(tmp, "snip.go")
	if err := os.WriteFile(snip, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pkgDir := filepath.Join(root, "cmd", "svcgen", "internal", "docsnip-"+filepath.Base(tmp))
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkgDir, "snip.go"): snip}})
	if err != nil {
		t.Fatal(err)
	}
	ov := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-overlay", ov, "-o", os.DevNull, "./cmd/svcgen/internal/"+filepath.Base(pkgDir))
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docs/svcgen.md's %s does not compile in a build function: %v\n%s", m[1], err, out)
	}
}
