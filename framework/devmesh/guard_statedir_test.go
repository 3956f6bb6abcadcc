package devmesh_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// docs/demo.md, `make up` step 3: every instance gets the service's
// shared data directory (.warren/data/NAME) and a snapshot directory of
// its own (.warren/snapshots/NAME-N), and both are emptied at every
// start, so a run never begins with the previous run's users or with
// snapshots pointing at the previous run's ports.
func TestStart_GivesSharedDataAndPerInstanceSnapshotDirsAndEmptiesBoth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an etcd and two service processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root, bin, state := t.TempDir(), t.TempDir(), t.TempDir()
	dir := filepath.Join(root, "services", "alpha", "cmd", "alpha")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(exe, filepath.Join(bin, "alpha")); err != nil {
		t.Fatal(err)
	}
	// What a previous run left: a user record and a snapshot of old ports.
	stale := []string{
		filepath.Join(state, "data", "alpha", "u-from-the-last-run.json"),
		filepath.Join(state, "snapshots", "alpha-1", "user.json"),
	}
	for _, p := range stale {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(fakeServiceEnv, "1") // inherited by the instances only

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	out := &syncbuf.Buffer{}
	m, err := devmesh.Start(ctx, devmesh.Config{Root: root, BinDir: bin, StateDir: state,
		Backends: []devmesh.Backend{etcddev.Backend()}, Out: out})
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, out)
	}
	defer func() {
		if err := m.Stop(); err != nil {
			t.Errorf("Stop: %v\n%s", err, out)
		}
	}()
	for _, p := range stale {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after Start (stat: %v); want every run to start empty", p, err)
		}
	}
	insts := m.Instances()
	if len(insts) != 2 {
		t.Fatalf("%d instances, want 2\n%s", len(insts), out)
	}
	for _, in := range insts {
		env := procEnv(t, in.Pid())
		if got, want := env["WARREN_DATA_DIR"], filepath.Join(state, "data", "alpha"); got != want {
			t.Errorf("%s: WARREN_DATA_DIR=%q, want the service's shared %q", in.ID(), got, want)
		}
		if got, want := env["WARREN_SNAPSHOT_DIR"], filepath.Join(state, "snapshots", in.ID()); got != want {
			t.Errorf("%s: WARREN_SNAPSHOT_DIR=%q, want its own %q", in.ID(), got, want)
		}
	}
}

// procEnv is the environment process pid was started with (Linux).
func procEnv(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		t.Fatalf("read the environment of pid %d: %v", pid, err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v // the last of a repeated name wins, as for the process
		}
	}
	return env
}
