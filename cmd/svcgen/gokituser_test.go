package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestOwnModule_RequiringGoKitTidiesAndBuilds: a user's module that
// already requires go-kit v0.13.0 (as a go-kit user's does) and then
// imports a Warren service gets go-kit's requirement on the monolithic
// google.golang.org/genproto of 2021, which still holds googleapis/api
// and googleapis/rpc; go mod tidy failed with "ambiguous import: found
// package google.golang.org/genproto/googleapis/api/httpbody in multiple
// modules" (report j51a F7). Warren's go.mod requires a monolith after
// the split (internal/genprotopin keeps it there), which the user's module
// inherits: tidy and build pass without a go get of their own.
func TestOwnModule_RequiringGoKitTidiesAndBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("tidies and builds a new module; skipped with -short")
	}
	checkout, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(checkout, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go \S+$`).Find(mod)
	if goLine == nil {
		t.Fatalf("no go line in %s/go.mod", checkout)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/kituser\n\n" + string(goLine) + "\n\n" +
			"require (\n\tgithub.com/go-kit/kit v0.13.0\n\tgithub.com/warren-mesh/warren v0.0.0\n)\n\n" +
			"replace github.com/warren-mesh/warren => " + checkout + "\n",
		"main.go": `package main

import (
	"context"
	"fmt"

	"github.com/go-kit/kit/endpoint"
	"github.com/warren-mesh/warren/services/user"
)

func main() {
	var e endpoint.Endpoint = endpoint.Nop
	c, err := user.NewClient(context.Background(), nil)
	fmt.Println(e != nil, c, err)
}
`,
	}
	// As in TestInit_FreshModuleOutsideTheRepositoryBuildsTestsAndRunsUp:
	// the checksum database may be out of reach, and the checkout's go.sum
	// covers the modules the build uses.
	sum, err := os.ReadFile(filepath.Join(checkout, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	files["go.sum"] = string(sum)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// tidy (project_test.go) reports errors other than an ambiguous import
	// (with -e, go mod tidy goes on past one); this looks for it first.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "tidy", "-e")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOSUMDB=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "ambiguous import") {
		t.Fatalf("go mod tidy in a module that requires go-kit v0.13.0 and imports services/user:\n%s", out)
	}
	if err != nil {
		t.Fatalf("go mod tidy -e: %v\n%s", err, out)
	}
	tidy(t, dir)
	goIn(t, dir, nil, "build", "./...")
}
