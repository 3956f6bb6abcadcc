package devmesh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// cancellingServer is the toy's dev server that cancels the bring-up the
// nth time it is asked for its flags: once by the launcher's own client,
// then once per instance the launcher starts.
type cancellingServer struct {
	toyServer
	calls  atomic.Int32
	at     int32
	cancel context.CancelFunc
}

func (s *cancellingServer) Flags(ttl time.Duration) map[string]string {
	if s.calls.Add(1) == s.at {
		s.cancel()
	}
	return s.toyServer.Flags(ttl)
}

// A Ctrl-C during bring-up was acted on only after every instance had
// been started. Now the start loop stops at the next instance: Start
// returns the context's error promptly, and the instances it did start
// are stopped, none left running.
func TestStart_CancelDuringBringUpStopsWhatItStartedAndNoMore(t *testing.T) {
	root, bin, marks := t.TempDir(), t.TempDir(), t.TempDir()
	services := []string{"alpha", "beta"}
	for _, svc := range services {
		dir := filepath.Join(root, "services", svc, "cmd", svc)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A "service" that notes its pid and runs until SIGTERM, 60 s at most.
		script := fmt.Sprintf("#!/bin/sh\ntrap 'exit 0' TERM\necho $$ >> %s/pids\ni=0\nwhile [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n", marks)
		if err := os.WriteFile(filepath.Join(bin, svc), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bringUp, interrupt := context.WithCancel(ctx)
	defer interrupt()
	// Call 1 is the launcher's client, call 2 the first instance's start.
	srv := &cancellingServer{at: 2, cancel: interrupt}
	toy := Backend{Registry: toyregistry.Backend(), Start: func(context.Context, string) (Server, error) { return srv, nil }}
	out := &syncbuf.Buffer{} // the launcher output, read while it is written
	began := time.Now()
	m, err := Start(bringUp, Config{Root: root, BinDir: bin, StateDir: t.TempDir(), Backends: []Backend{toy},
		Services: services, Instances: 3, Grace: 100 * time.Millisecond, Out: out})
	took := time.Since(began)
	if m != nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Start = %v, %v; want context.Canceled\n%s", m, err, out)
	}
	if took > 40*time.Second {
		t.Fatalf("Start returned %s after the cancel", took)
	}
	// One process was started before the cancel was seen, not all six.
	if !strings.Contains(out.String(), "stopping 1 instance(s)") {
		t.Fatalf("launcher did not stop exactly the one instance it started:\n%s", out)
	}
	if srv.closed != 1 {
		t.Fatalf("registry server closed %d times, want 1", srv.closed)
	}
	b, _ := os.ReadFile(filepath.Join(marks, "pids")) // empty if it was stopped before it ran
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("instance process %d still exists after Start returned (kill 0: %v)", pid, err)
		}
	}
}
