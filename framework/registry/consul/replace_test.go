package consul

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// A Register that replaces an ID the Registry holds stops the old copy's
// heartbeat before it registers the new one. When it then fails (its ctx
// ended before the agent took the new copy), the old copy was left on the
// agent with no heartbeat and no record: Close did not withdraw it, so
// the agent kept listing it, passing until its TTL ran out and critical
// until Consul reaped it.
func TestRegistry_FailedReplacementLeavesNothingBehind(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(30*time.Second))
	inst := testInstance("replace-1", "replace", "http", "127.0.0.1", "18094")
	if err := r.Register(ctxT(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	inst2 := inst
	inst2.Endpoints = []string{"http://127.0.0.1:18095"}
	if err := r.Register(ended, inst2); err == nil {
		t.Fatal("Register with an ended context succeeded")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if holds(t, a.Addr(), inst.ID) {
		t.Fatalf("the agent still holds %s after Close", inst.ID)
	}
}

// refuseRegister fails the agent's service-register calls, as an agent
// that cannot be reached would, while on is set; every other call goes
// through to the real agent.
type refuseRegister struct {
	on   atomic.Bool
	next http.RoundTripper
}

func (f *refuseRegister) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.on.Load() && strings.HasPrefix(req.URL.Path, "/v1/agent/service/register") {
		return nil, errors.New("refused by the test")
	}
	return f.next.RoundTrip(req)
}

// The same when Close ends a replacing Register that still retries: Close
// skips a registration whose Register runs, and the replaced copy was
// left on the agent.
func TestRegistry_ReplacementEndedByCloseLeavesNothingBehind(t *testing.T) {
	a := needAgent(t)
	f := &refuseRegister{}
	r := newRegistry(t, a.Addr(), WithTTLCheck(30*time.Second),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { f.next = next; return f }))
	inst := testInstance("replace-2", "replace", "http", "127.0.0.1", "18096")
	if err := r.Register(ctxT(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	f.on.Store(true)
	done := make(chan error, 1)
	go func() { done <- r.Register(ctxT(t, time.Minute), inst) }()
	eventually(t, 10*time.Second, "the replacement retrying", func() bool { return r.Status().State == registry.StateRetrying })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("the replacing Register ended with %v, want ErrClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the replacing Register did not end within 20s of Close")
	}
	if holds(t, a.Addr(), inst.ID) {
		t.Fatalf("the agent still holds %s after Close ended its replacement", inst.ID)
	}
}
