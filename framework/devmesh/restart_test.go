package devmesh

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// A hang played with SIGSTOP (Signal) left the instance stopped, and a
// Restart after it sent SIGTERM alone: a stopped process does not act on
// it, so Restart waited out its context ("did not exit") where Stop, which
// sends SIGCONT too, ended the same process at once. Restart now resumes
// the process after the SIGTERM.
func TestRestart_OfAStoppedInstanceEndsItAndStartsANewOne(t *testing.T) {
	m, out := toyMeshUp(t, map[string]string{"alpha": scriptServe}, 1)
	old := m.Instance("alpha", 1)
	// The scripts cannot register: the test lists alpha-1 itself, at a
	// loopback server that is ready, so the new process is "ready" once
	// it runs.
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer ready.Close()
	reg := m.disc.(registry.Registry)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := reg.Register(ctx, registry.Instance{ID: "alpha-1", Name: "alpha", Endpoints: []string{ready.URL}}); err != nil {
		t.Fatal(err)
	}
	defer reg.Deregister(context.Background(), registry.Instance{ID: "alpha-1", Name: "alpha", Endpoints: []string{ready.URL}})

	waitUp(t, m, "alpha", 1) // handles SIGTERM before it is stopped
	if err := m.Signal(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The restart's own bound: far above a SIGTERM's effect, far below
	// the test's.
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	next, err := m.Restart(rctx, old)
	if err != nil {
		t.Fatalf("Restart of a SIGSTOPped instance: %v\n%s", err, out)
	}
	if alive(old) || old.Err() != nil {
		t.Errorf("old process: running %v, ended with %v; want it ended by its SIGTERM (exit 0)", alive(old), old.Err())
	}
	if !alive(next) || next.ID() != "alpha-1" || next.Pid() == old.Pid() {
		t.Errorf("new process %s (pid %d, running %v); want a running alpha-1 in a new process", next.ID(), next.Pid(), alive(next))
	}
	if strings.Contains(out.String(), "exited unexpectedly") {
		t.Errorf("the restart's own stop was reported as a death\n%s", out)
	}
}
