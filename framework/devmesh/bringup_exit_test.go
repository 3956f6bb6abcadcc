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
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A service that fails at start, before it registers, failed the bring-up
// only at ReadyTimeout (60 s by default) with "fewer than 2 instances
// registered": the exit was looked at only when discovery sent an event,
// and a crashed instance sends none. Now the bring-up fails as soon as an
// instance exits, naming it.
func TestStart_AnInstanceThatExitsBeforeRegisteringFailsTheBringUpNamingIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, out, err := toyMesh(t, ctx, map[string]string{"alpha": scriptCrash}, 2, 30*time.Second)
	if m != nil || err == nil {
		t.Fatalf("Start = %v, %v; want an error", m, err)
	}
	if !strings.Contains(err.Error(), "alpha-1 exited") && !strings.Contains(err.Error(), "alpha-2 exited") {
		t.Fatalf("Start = %v; want it to name the instance that exited\n%s", err, out)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start = %v; want the exit, not the readiness deadline", err)
	}
}

// toyMesh runs Start on the toy registry (in memory in the launcher: the
// scripts never register, so Start cannot succeed) with the given scripts
// as the services.
func toyMesh(t *testing.T, ctx context.Context, scripts map[string]string, instances int, readyTimeout time.Duration) (*Mesh, *syncbuf.Buffer, error) {
	t.Helper()
	root, bin := t.TempDir(), t.TempDir()
	var services []string
	for svc, script := range scripts {
		dir := filepath.Join(root, "services", svc, "cmd", svc)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, svc), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		services = append(services, svc)
	}
	toy := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return &toyServer{}, nil }}
	out := &syncbuf.Buffer{}
	m, err := Start(ctx, Config{Root: root, BinDir: bin, StateDir: t.TempDir(), Backends: []Backend{toy},
		Services: services, Instances: instances, Grace: 100 * time.Millisecond, ReadyTimeout: readyTimeout, Out: out})
	if m != nil {
		t.Cleanup(func() { m.Stop() })
	}
	return m, out, err
}
