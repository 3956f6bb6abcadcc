package endpointer

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// recorder is a factory that counts builds and closes per instance and
// lets a test hold calls in flight.
type recorder struct {
	mu     sync.Mutex
	built  map[string]int
	closed map[string]int
	hold   chan struct{}
}

func newRecorder() *recorder {
	return &recorder{built: map[string]int{}, closed: map[string]int{}}
}

func (r *recorder) factory(instance string) (endpoint.Endpoint, io.Closer, error) {
	r.mu.Lock()
	r.built[instance]++
	hold := r.hold
	r.mu.Unlock()
	ep := func(ctx context.Context, _ any) (any, error) {
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return instance, nil
	}
	return ep, closer(func() error {
		r.mu.Lock()
		r.closed[instance]++
		r.mu.Unlock()
		return nil
	}), nil
}

func (r *recorder) counts(instance string) (built, closed int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.built[instance], r.closed[instance]
}

type closer func() error

func (c closer) Close() error { return c() }

func inst(port int) registry.Instance {
	return registry.Instance{ID: registry.DefaultID("svc", "127.0.0.1", port), Name: "svc", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func setup(t *testing.T, r *recorder, opts ...Option) (*memory.Registry, *Endpointer) {
	t.Helper()
	reg := memory.New()
	t.Cleanup(func() { reg.Close() })
	src, err := reg.Instancer(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	e := New(src, r.factory, opts...)
	t.Cleanup(e.Close)
	return reg, e
}

func TestEndpointer_BuildsOneEndpointPerInstanceAndKeepsItAcrossUpdates(t *testing.T) {
	r := newRecorder()
	reg, e := setup(t, r)
	ctx := context.Background()
	a, b := inst(1001), inst(1002)
	_ = reg.Register(ctx, a)
	_ = reg.Register(ctx, b)
	waitFor(t, "two targets", func() bool { return len(e.Targets()) == 2 })
	_ = reg.Register(ctx, inst(1003))
	waitFor(t, "three targets", func() bool { return len(e.Targets()) == 3 })
	if built, closed := r.counts(a.String()); built != 1 || closed != 0 {
		t.Fatalf("instance a built %d closed %d times, want 1/0", built, closed)
	}
}

func TestEndpointer_ClosesLeavingInstanceOnlyAfterItsInFlightCallsFinish(t *testing.T) {
	r := newRecorder()
	r.hold = make(chan struct{})
	reg, e := setup(t, r)
	ctx := context.Background()
	a := inst(1001)
	_ = reg.Register(ctx, a)
	waitFor(t, "target", func() bool { return len(e.Targets()) == 1 })
	tg := e.Targets()[0]
	done := make(chan error, 1)
	go func() { _, err := tg.Call(ctx, nil); done <- err }()
	waitFor(t, "call in flight", func() bool { return tg.InFlight() == 1 })

	_ = reg.Deregister(ctx, a) // rolling restart: the instance leaves
	waitFor(t, "empty set", func() bool { return len(e.Targets()) == 0 })
	if _, closed := r.counts(a.String()); closed != 0 {
		t.Fatal("closed under an in-flight call")
	}
	close(r.hold)
	if err := <-done; err != nil {
		t.Fatalf("in-flight call failed: %v", err)
	}
	if _, closed := r.counts(a.String()); closed != 1 {
		t.Fatalf("closed %d times after the last call, want 1", closed)
	}
}

func TestEndpointer_CloseClosesEveryInstanceAndIsIdempotent(t *testing.T) {
	r := newRecorder()
	reg, e := setup(t, r)
	ctx := context.Background()
	for _, p := range []int{1001, 1002} {
		_ = reg.Register(ctx, inst(p))
	}
	waitFor(t, "targets", func() bool { return len(e.Targets()) == 2 })
	e.Close()
	e.Close()
	for _, p := range []int{1001, 1002} {
		if _, closed := r.counts(inst(p).String()); closed != 1 {
			t.Errorf("instance %d closed %d times", p, closed)
		}
	}
	if _, err := e.Endpoints(); !errors.Is(err, ErrClosed) || !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Endpoints after Close: %v", err)
	}
	// The registry can still publish; the closed endpointer must not care.
	_ = reg.Register(ctx, inst(1003))
	if len(e.Targets()) != 0 {
		t.Error("targets after Close")
	}
}

type errInstancer struct{ events []sd.Event }

func (s errInstancer) Register(ch chan<- sd.Event) {
	for _, ev := range s.events {
		ch <- ev
	}
}
func (errInstancer) Deregister(chan<- sd.Event) {}
func (errInstancer) Stop()                      {}

func TestEndpointer_KeepsLastSetWhenDiscoveryReportsAnError(t *testing.T) {
	r := newRecorder()
	a := inst(1001).String()
	e := New(errInstancer{[]sd.Event{{Instances: []string{a}}, {Err: errors.New("registry down")}}}, r.factory)
	defer e.Close()
	if err := e.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "target", func() bool { return len(e.Targets()) == 1 })
	if _, closed := r.counts(a); closed != 0 {
		t.Fatal("instance closed on a discovery error")
	}
}

func TestEndpointer_WaitBlocksUntilDiscoveryAnswers(t *testing.T) {
	e := New(errInstancer{}, newRecorder().factory)
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := e.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with silent discovery = %v", err)
	}
	f := New(sd.FixedInstancer{inst(1).String()}, newRecorder().factory)
	defer f.Close()
	if err := f.Wait(context.Background()); err != nil || len(f.Targets()) != 1 {
		t.Fatalf("Wait = %v with %d targets", err, len(f.Targets()))
	}
}

func TestEndpointer_WorksUnderGoKitBalancersAndFeedsOurs(t *testing.T) {
	rr := balancer.NewRoundRobin()
	e := New(sd.FixedInstancer{inst(1).String(), inst(2).String()}, newRecorder().factory, WithBalancer(rr))
	defer e.Close()
	_ = e.Wait(context.Background())
	ep, err := lb.NewRoundRobin(e).Endpoint()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ep(context.Background(), nil); err != nil || got == nil {
		t.Fatalf("go-kit endpoint: %v, %v", got, err)
	}
	if _, err := rr.Pick(context.Background(), nil); err != nil {
		t.Fatalf("balancer got no update: %v", err)
	}
}
