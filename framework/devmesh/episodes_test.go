package devmesh

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// Scripts the toy mesh runs as services. Each ends by itself within 60 s
// whatever happens, so no test leaves a process behind for long.
const (
	// runs until SIGTERM; says it handles it with a file in its data dir
	scriptServe = "#!/bin/sh\ntrap 'exit 0' TERM\nmkdir -p \"$WARREN_DATA_DIR\" && touch \"$WARREN_DATA_DIR/up-$$\"\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
	// ignores SIGTERM (a hung drain); says so with a file in its data dir too
	scriptDeaf = "#!/bin/sh\ntrap '' TERM\nmkdir -p \"$WARREN_DATA_DIR\" && touch \"$WARREN_DATA_DIR/up-$$\"\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n"
	// fails at start, before it could register, after the launcher has
	// seen discovery's first (empty) list: a crash after that sent no event
	scriptCrash = "#!/bin/sh\nsleep 2\necho bad config >&2\nexit 3\n"
)

// toyMeshUp is a toy mesh past Start: the toy registry lists nothing, so
// it is assembled from Start's parts without the readiness wait.
func toyMeshUp(t *testing.T, scripts map[string]string, instances int) (*Mesh, *syncbuf.Buffer) {
	t.Helper()
	root, bin, state := t.TempDir(), t.TempDir(), t.TempDir()
	toy := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return &toyServer{}, nil }}
	out := &syncbuf.Buffer{}
	unlock, err := lockStateDir(state)
	if err != nil {
		t.Fatal(err)
	}
	m := &Mesh{cfg: withDefaults(Config{Root: root, BinDir: bin, StateDir: state, Backends: []Backend{toy},
		Instances: instances, Grace: 100 * time.Millisecond, Out: out}), unlock: unlock}
	t.Cleanup(func() { m.Stop() })
	for svc, script := range scripts {
		if err := os.WriteFile(filepath.Join(bin, svc), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		m.services = append(m.services, svc)
	}
	if err := m.startRegistry(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, svc := range m.services {
		for i := 1; i <= instances; i++ {
			if _, err := m.startInstance(svc, i, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m, out
}

// alive says whether the instance's process has not exited.
func alive(in *Instance) bool {
	select {
	case <-in.Exited():
		return false
	default:
		return true
	}
}

// waitUp waits until n processes of svc have set their SIGTERM trap (the
// scripts' files), so a signal after it finds them handling it.
func waitUp(t *testing.T, m *Mesh, svc string, n int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		marks, _ := filepath.Glob(filepath.Join(m.cfg.StateDir, "data", svc, "up-*"))
		if len(marks) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d %s processes up after 30s", len(marks), n, svc)
		}
	}
}
