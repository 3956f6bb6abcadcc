package consul

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// shared is the package's agent, started by TestMain. Tests that stop or
// restart an agent start their own.
var shared *consultest.Agent

func TestMain(m *testing.M) {
	if !consultest.Skipped() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		a, err := consultest.Start(ctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: the consul registry tests need a real Consul agent: %v\n"+
				"(set %s=1 to skip them)\n", err, consultest.SkipEnv)
			os.Exit(1)
		}
		shared = a
	}
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// needAgent returns the shared agent, or skips when WARREN_SKIP_CONSUL=1.
func needAgent(t *testing.T) *consultest.Agent {
	t.Helper()
	if shared == nil {
		t.Skipf("%s=1", consultest.SkipEnv)
	}
	return shared
}

// ownAgent makes (but does not start) an agent for a test that stops or
// restarts it.
func ownAgent(t *testing.T) *consultest.Agent {
	t.Helper()
	needAgent(t)
	a, err := consultest.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", a.Log())
		}
		a.Close()
	})
	return a
}

func newRegistry(t *testing.T, addr string, opts ...Option) *Registry {
	t.Helper()
	opts = append([]Option{WithAddress(addr), WithRetryBackoff(50*time.Millisecond, time.Second)}, opts...)
	r, err := New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newInstancer(t *testing.T, r *Registry, service string, opts ...InstancerOption) *Instancer {
	t.Helper()
	in, err := r.NewInstancer(context.Background(), service, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in
}

// recorder subscribes to an instancer and keeps the latest event, reading
// the channel all the time as sd.Instancer requires.
type recorder struct {
	mu      sync.Mutex
	last    sd.Event
	events  int
	changed chan struct{} // closed and replaced on every event
}

func record(t *testing.T, in sd.Instancer) *recorder {
	t.Helper()
	rec := &recorder{changed: make(chan struct{})}
	ch := make(chan sd.Event)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-ch:
				rec.mu.Lock()
				rec.last, rec.events = ev, rec.events+1
				close(rec.changed)
				rec.changed = make(chan struct{})
				rec.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	in.Register(ch)
	t.Cleanup(func() {
		in.Deregister(ch)
		close(stop)
		<-done
	})
	return rec
}

// waitFor waits up to d for an event satisfying ok and returns it with the
// time it took.
func (rec *recorder) waitFor(t *testing.T, d time.Duration, what string, ok func(sd.Event) bool) (sd.Event, time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		rec.mu.Lock()
		ev, changed, n := rec.last, rec.changed, rec.events
		rec.mu.Unlock()
		if n > 0 && ok(ev) {
			return ev, time.Since(start)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("after %s: no event where %s; last event (%d so far): %v %v", d, what, n, ev.Instances, ev.Err)
		}
	}
}

// byID returns the parsed instance with the given ID from an event.
func byID(ev sd.Event, id string) (registry.Instance, bool) {
	for _, s := range ev.Instances {
		if inst, err := registry.ParseInstance(s); err == nil && inst.ID == id {
			return inst, true
		}
	}
	return registry.Instance{}, false
}

func has(id string) func(sd.Event) bool {
	return func(ev sd.Event) bool { _, ok := byID(ev, id); return ok && ev.Err == nil }
}

func hasNot(id string) func(sd.Event) bool {
	return func(ev sd.Event) bool { _, ok := byID(ev, id); return !ok && ev.Err == nil }
}

func ids(ev sd.Event) []string {
	var out []string
	for _, s := range ev.Instances {
		if inst, err := registry.ParseInstance(s); err == nil {
			out = append(out, inst.ID)
		}
	}
	slices.Sort(out)
	return out
}

// countingTransport counts the requests that reach the network.
type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(req)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
