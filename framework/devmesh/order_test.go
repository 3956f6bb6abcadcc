package devmesh

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry"
)

// brokenRoot is a module whose one service does not compile.
func brokenRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"go.mod":                       "module example.com/broken\n\ngo 1.22\n",
		"services/pay/cmd/pay/main.go": "package main\n\nfunc main() { this does not compile }\n",
		"services/pay/service.go":      "package pay\n",
	}
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// A registry that cannot start (make up REGISTRY=consul in a project with
// no consul binary) fails the bring-up before any service is compiled:
// the error is the registry's, and no build ran. It used to come after
// the whole build (here: the build's error came first).
func TestStart_ARegistryThatCannotStartFailsBeforeTheBuild(t *testing.T) {
	errNoServer := errors.New("consul binary not found")
	be := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return nil, errNoServer }}
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := Start(ctx, Config{Root: brokenRoot(t), Backends: []Backend{be}, StateDir: state, Out: &lockedDiscard{}})
	if m != nil || !errors.Is(err, errNoServer) {
		t.Fatalf("Start = %v, %v; want the registry's error", m, err)
	}
	if strings.Contains(err.Error(), "go build") {
		t.Fatalf("Start built the services before starting the registry: %v", err)
	}
	if _, err := os.Stat(filepath.Join(state, "bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the build's output directory exists (%v): the services were built first", err)
	}
}

// A build that fails after the registry started stops that registry:
// the bring-up leaves no server behind.
func TestStart_AFailedBuildStopsTheRegistryItStarted(t *testing.T) {
	srv := &toyServer{}
	be := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return srv, nil }}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := Start(ctx, Config{Root: brokenRoot(t), Backends: []Backend{be}, StateDir: t.TempDir(), Out: &lockedDiscard{}})
	if m != nil || err == nil || !strings.Contains(err.Error(), "go build") {
		t.Fatalf("Start = %v, %v; want the build's error", m, err)
	}
	if srv.closed != 1 {
		t.Fatalf("the registry was closed %d times after the failed build, want 1", srv.closed)
	}
}
