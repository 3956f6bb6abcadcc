package endpointer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/kit/sd/lb"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
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

// Over a delta instancer, a change builds only the new instance's
// endpoint, keeps every other target as it was, and publishes a set still
// sorted by instance string, through many random joins and leaves.
func TestEndpointer_DeltaChangeBuildsOnlyTheChangeAndKeepsOrder(t *testing.T) {
	c := registry.NewCache()
	var all []string
	for i := range 300 {
		all = append(all, registry.Instance{ID: fmt.Sprintf("i-%03d", i), Name: "svc", Endpoints: []string{fmt.Sprintf("http://10.0.%d.%d:80", i/200, i%200+1)}}.String())
	}
	c.Update(sd.Event{Instances: all[:200]})
	rec := newRecorder()
	e := New(deltaOnly{c}, rec.factory)
	defer e.Close()
	waitFor(t, "200 targets", func() bool { return len(e.Targets()) == 200 })
	before := map[string]*balancer.Target{}
	for _, tg := range e.Targets() {
		before[tg.ID] = tg
	}
	rng := rand.New(rand.NewPCG(1, 2))
	live := map[string]bool{}
	for _, s := range all[:200] {
		live[s] = true
	}
	for range 200 {
		s := all[rng.IntN(len(all))]
		if live[s] {
			c.Apply(nil, []string{s}, nil)
		} else {
			c.Apply([]string{s}, nil, nil)
		}
		live[s] = !live[s]
	}
	want := 0
	for _, ok := range live {
		if ok {
			want++
		}
	}
	waitFor(t, "the final set", func() bool { return len(e.Targets()) == want })
	ts := e.Targets()
	if !slices.IsSortedFunc(ts, func(a, b *balancer.Target) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatal("targets not sorted after incremental changes")
	}
	for _, tg := range ts {
		if !live[tg.ID] {
			t.Fatalf("%s in the set but left discovery", tg.ID)
		}
		if b, ok := before[tg.ID]; ok && b != tg {
			if built, _ := rec.counts(tg.ID); built == 1 {
				t.Fatalf("%s replaced without leaving", tg.ID)
			}
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, s := range all[:200] {
		if rec.built[s] < 1 {
			t.Fatalf("%s never built", s)
		}
	}
	builds := 0
	for _, n := range rec.built {
		builds += n
	}
	// 200 at start plus one per join: never a rebuild of the whole set.
	if joins := builds - 200; joins > 200 {
		t.Fatalf("%d builds after start for 200 changes", joins)
	}
}

// deltaOnly hides everything of a Cache but the instancer and delta
// methods, so the test proves the endpointer takes the delta path.
type deltaOnly struct{ c *registry.Cache }

func (d deltaOnly) Register(chan<- sd.Event)                 { panic("full-set path used over a delta instancer") }
func (d deltaOnly) Deregister(chan<- sd.Event)               {}
func (d deltaOnly) Stop()                                    {}
func (d deltaOnly) RegisterDelta(ch chan<- registry.Delta)   { d.c.RegisterDelta(ch) }
func (d deltaOnly) DeregisterDelta(ch chan<- registry.Delta) { d.c.DeregisterDelta(ch) }

func TestEndpointer_FirstSetIsPublishedSortedWithoutTouchingTheSharedDelta(t *testing.T) {
	c := registry.NewCache()
	var all []string
	for i := range 100 {
		all = append(all, registry.Instance{ID: fmt.Sprintf("i-%03d", i), Name: "svc", Endpoints: []string{fmt.Sprintf("http://10.0.0.%d:80", i+1)}}.String())
	}
	slices.Reverse(all) // the order the instancer hands them in, not the endpointer's
	// Another subscriber of the same cache: a delta's slices are shared
	// by all of them, so the endpointer must sort a copy.
	other := make(chan registry.Delta, 1)
	c.RegisterDelta(other)
	bad := all[7]
	e := New(deltaOnly{c}, func(instance string) (endpoint.Endpoint, io.Closer, error) {
		if instance == bad {
			return nil, nil, errors.New("factory refused")
		}
		return endpoint.Nop, nil, nil
	})
	defer e.Close()
	c.Update(sd.Event{Instances: all})
	waitFor(t, "the first set", func() bool { return len(e.Targets()) == len(all)-1 })
	ts := e.Targets()
	if !slices.IsSortedFunc(ts, func(a, b *balancer.Target) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatal("first set not sorted")
	}
	for _, tg := range ts {
		if tg.ID == bad {
			t.Fatal("an instance the factory refused is in the set")
		}
	}
	if d := <-other; !slices.Equal(d.Added, all) {
		t.Fatal("the delta another subscriber got was reordered")
	}
	// A change after the first set takes the incremental path and keeps the order.
	c.Apply([]string{registry.Instance{ID: "i-x", Name: "svc", Endpoints: []string{"http://10.0.1.1:80"}}.String()}, []string{all[0]}, nil)
	waitFor(t, "the change", func() bool {
		return len(e.Targets()) == len(all)-1 && e.Targets()[len(e.Targets())-1].ID != ts[len(ts)-1].ID
	})
	if !slices.IsSortedFunc(e.Targets(), func(a, b *balancer.Target) int { return strings.Compare(a.ID, b.ID) }) {
		t.Fatal("set not sorted after a change")
	}
}

// Every line the endpointer logs carries a level, on the event path and
// the delta path alike, so a level filter and a log search see them.
func TestEndpointer_LogLinesCarryAWarnLevel(t *testing.T) {
	good := inst(1001).String()
	failing := func(instance string) (endpoint.Endpoint, io.Closer, error) {
		if instance != good {
			return nil, nil, errors.New("cannot build")
		}
		return newRecorder().factory(instance)
	}
	check := func(t *testing.T, logs *syncbuf.Buffer) {
		t.Helper()
		waitFor(t, "two log lines", func() bool { return strings.Count(logs.String(), "\n") >= 2 })
		for _, want := range []string{`level=warn msg="skipping instance"`, `level=warn msg="discovery error; keeping last known instances"`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("no %s in:\n%s", want, logs)
			}
		}
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if !strings.Contains(line, "level=") {
				t.Errorf("line without a level: %s", line)
			}
		}
	}
	t.Run("events", func(t *testing.T) {
		logs := &syncbuf.Buffer{}
		e := New(errInstancer{[]sd.Event{{Instances: []string{good, "not an instance"}}, {Err: errors.New("registry down")}}},
			failing, WithLogger(log.NewLogfmtLogger(logs)))
		defer e.Close()
		check(t, logs)
	})
	t.Run("deltas", func(t *testing.T) {
		c := registry.NewCache()
		logs := &syncbuf.Buffer{}
		e := New(deltaOnly{c}, failing, WithLogger(log.NewLogfmtLogger(logs)))
		defer e.Close()
		c.Apply([]string{good, "not an instance"}, nil, nil)
		c.Apply(nil, nil, errors.New("registry down"))
		check(t, logs)
	})
}

// A discovery outage is one warning and one line when it ends, however
// many error events the registry sends meanwhile (it logs those itself).
func TestEndpointer_LogsADiscoveryOutageOnceAndItsEnd(t *testing.T) {
	c := registry.NewCache()
	logs := &syncbuf.Buffer{}
	e := New(deltaOnly{c}, newRecorder().factory, WithLogger(log.NewLogfmtLogger(logs)))
	defer e.Close()
	set := []string{inst(1001).String()}
	c.Update(sd.Event{Instances: set})
	for i := range 3 {
		c.Update(sd.Event{Instances: set, Err: fmt.Errorf("registry down (try %d)", i+1)})
	}
	c.Update(sd.Event{Instances: set})
	waitFor(t, "the outage's end", func() bool { return strings.Contains(logs.String(), "discovery answers again") })
	if n := strings.Count(logs.String(), "discovery error; keeping last known instances"); n != 1 {
		t.Fatalf("3 error events logged %d warnings, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "try 1") {
		t.Fatalf("the warning is not the first error's:\n%s", logs)
	}
	if len(e.Targets()) != 1 {
		t.Fatalf("%d targets after the outage, want 1", len(e.Targets()))
	}
}
