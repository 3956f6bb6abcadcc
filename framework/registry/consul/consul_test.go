package consul

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

const testTTL = 2 * time.Second

func TestRegistry_RegisteredInstanceIsVisibleWithMetaAndTagsThenGoneAfterDeregister(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL))
	inst := registry.Instance{
		ID: "meta-1", Name: "meta-svc", Endpoints: []string{"https://127.0.0.1:8081", "grpc://127.0.0.1:9081"},
		Version: "1.2.3", Zone: "eu-1", Weight: 7, Tags: []string{"b", "a"},
		Metadata: map[string]string{"build": "abc", "team_x": "core-1"},
	}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if s := r.Status(); s.State != registry.StateRegistered {
		t.Fatalf("status after Register = %+v", s)
	}
	ev, took := rec.WaitFor(t, 5*time.Second, "meta-1 is passing", registrytest.Has(inst.ID))
	t.Logf("visible after %s", took)
	got, _ := registrytest.ByID(ev, inst.ID)
	want := inst
	want.Tags = []string{"a", "b"}
	want.Metadata = map[string]string{"build": "abc", "team_x": "core-1", "dc": "dc1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("instance from consul:\n got %#v\nwant %#v", got, want)
	}

	if err := r.Deregister(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 5*time.Second, "meta-1 is gone", registrytest.Lacks(inst.ID))
	if s := r.Status(); s.State != registry.StateWithdrawn {
		t.Fatalf("status after Deregister = %+v", s)
	}
	if err := r.Deregister(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
}

func TestRegistry_FrozenProcessLeavesPassingSetWithinTTL(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL))
	inst := registry.Instance{ID: "frozen-1", Name: "frozen-svc", Endpoints: []string{"http://127.0.0.1:8082"}}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 5*time.Second, "frozen-1 is passing", registrytest.Has(inst.ID))
	// Stay registered for a few heartbeats first: the check must not expire
	// while the process is alive.
	time.Sleep(testTTL + testTTL/2)
	if ev, _ := rec.WaitFor(t, time.Second, "any event", func(sd.Event) bool { return true }); !registrytest.Has(inst.ID)(ev) {
		t.Fatalf("a heartbeating instance left the passing set: %v %v", ev.Instances, ev.Err)
	}

	r.paused.Store(true) // the process freezes: no more heartbeats
	_, took := rec.WaitFor(t, testTTL+time.Second, "frozen-1 left the passing set", registrytest.Lacks(inst.ID))
	t.Logf("left the passing set %s after the heartbeat stopped (TTL %s)", took, testTTL)

	r.paused.Store(false)
	rec.WaitFor(t, testTTL, "frozen-1 is passing again", registrytest.Has(inst.ID))
}

func TestRegistry_ReportsReadinessThroughTTLCheck(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL))
	var notReady atomic.Bool
	r.UseReadiness(func(context.Context) error {
		if notReady.Load() {
			return errors.New("database down")
		}
		return nil
	})
	inst := registry.Instance{ID: "ready-1", Name: "ready-svc", Endpoints: []string{"http://127.0.0.1:8083"}}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 5*time.Second, "ready-1 is passing", registrytest.Has(inst.ID))

	notReady.Store(true)
	rec.WaitFor(t, testTTL, "ready-1 is critical", registrytest.Lacks(inst.ID))
	checks, _, err := r.Client().Health().Checks(inst.Name, nil)
	if err != nil || len(checks) != 1 || checks[0].Status != api.HealthCritical || !strings.Contains(checks[0].Output, "database down") {
		t.Fatalf("checks = %+v, %v; want one critical check saying why", checks, err)
	}

	notReady.Store(false)
	rec.WaitFor(t, testTTL, "ready-1 is passing again", registrytest.Has(inst.ID))
}

func TestRegistry_ReRegistersAfterAgentRestart(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL), WithRequestTimeout(time.Second))
	inst := registry.Instance{ID: "restart-1", Name: "restart-svc", Endpoints: []string{"http://127.0.0.1:8084"}, Version: "9"}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 5*time.Second, "restart-1 is passing", registrytest.Has(inst.ID))

	a.Kill()
	// Held while down, so no other process takes it before the restart.
	if ln, err := net.Listen("tcp", a.Addr()); err == nil {
		ln.Close()
		t.Fatalf("the killed agent's port %s could be bound by someone else", a.Addr())
	}
	ev, _ := rec.WaitFor(t, 5*time.Second, "an error event", func(ev sd.Event) bool { return ev.Err != nil })
	if _, ok := registrytest.ByID(ev, inst.ID); !ok {
		t.Fatalf("error event %v dropped the last good set %v", ev.Err, ev.Instances)
	}
	waitState(t, r, registry.StateRetrying, 5*time.Second)

	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	check := newRegistry(t, a.Addr())
	for {
		entries, _, err := check.Client().Health().Service(inst.Name, "", true, nil)
		if err == nil && len(entries) == 1 {
			break
		}
		if time.Since(up) > testTTL+2*time.Second {
			t.Fatalf("not registered again %s after the agent came back: %v %v", time.Since(up), entries, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("registered again %s after the agent came back", time.Since(up).Round(time.Millisecond))
	rec.WaitFor(t, 5*time.Second, "the instancer sees restart-1 again", registrytest.Has(inst.ID))
	waitState(t, r, registry.StateRegistered, time.Second)
	if s := r.Status(); s.Reregistrations != 1 || s.LastError == "" {
		t.Fatalf("status = %+v; want 1 re-registration and the last error kept", s)
	}
}

func waitState(t *testing.T, r *Registry, want registry.State, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for r.Status().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("state = %+v, want %s", r.Status(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInstancer_FillsOnceAgentComesUpWithoutBusyLoop(t *testing.T) {
	a := ownAgent(t) // ports chosen, not started
	counter := &countingTransport{}
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL), WithRequestTimeout(time.Second),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { counter.next = next; return counter }))

	start := time.Now()
	in := newInstancer(t, r, "late-svc")
	// A constructor that waited for the agent would never return here;
	// the bound is generous for a loaded machine.
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("NewInstancer took %s with the agent down", d)
	}
	rec := registrytest.Record(t, in)
	rec.WaitFor(t, 5*time.Second, "an error event", func(ev sd.Event) bool { return ev.Err != nil })

	inst := registry.Instance{ID: "late-1", Name: "late-svc", Endpoints: []string{"http://127.0.0.1:8085"}}
	// 2 s: on a loaded machine an attempt may still be under way when the
	// deadline ends it; the error must name the refusal of an earlier one.
	err := r.Register(ctxT(t, 2*time.Second), inst)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Register with the agent down = %v; want the deadline and the connection error", err)
	}

	time.Sleep(3 * time.Second)
	n := counter.n.Load()
	t.Logf("%d requests in %s with the agent down", n, time.Since(start).Round(time.Millisecond))
	// Backoff from 50 ms to 1 s gives the instancer and Register ~20
	// requests in these 5 s; a busy loop makes thousands.
	if n > 40 {
		t.Fatalf("%d requests in %s with the agent down: busy loop", n, time.Since(start))
	}

	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	// The instancer is backing off (at most 1s here); it must find the set.
	_, took := rec.WaitFor(t, 5*time.Second, "late-1 is visible", registrytest.Has(inst.ID))
	t.Logf("visible %s after Register", took)
}

func TestInstancer_KeepsOnlyInstancesWithEveryTag(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL))
	for i, tags := range [][]string{{"a", "b"}, {"a"}, {"b"}, {"b", "c", "a"}, nil} {
		inst := registry.Instance{ID: "tag-" + strconv.Itoa(i), Name: "tag-svc", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 9000+i)}, Tags: tags}
		if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		tags []string
		want []string
	}{
		{[]string{"a", "b"}, []string{"tag-0", "tag-3"}},
		{[]string{"a"}, []string{"tag-0", "tag-1", "tag-3"}},
		{[]string{"c"}, []string{"tag-3"}},
		{nil, []string{"tag-0", "tag-1", "tag-2", "tag-3", "tag-4"}},
	}
	for _, c := range cases {
		rec := registrytest.Record(t, newInstancer(t, r, "tag-svc", Tags(c.tags...)))
		rec.WaitFor(t, 5*time.Second, "tags "+strings.Join(c.tags, ",")+" select "+strings.Join(c.want, ","),
			func(ev sd.Event) bool { return ev.Err == nil && slices.Equal(registrytest.IDs(ev), c.want) })
	}
}

func TestInstancer_RendersIPv6AddressBracketed(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL))
	inst := registry.Instance{ID: "v6-1", Name: "v6-svc", Endpoints: []string{"http://[::1]:8086"}}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	ev, _ := rec.WaitFor(t, 5*time.Second, "v6-1 is passing", registrytest.Has(inst.ID))
	if len(ev.Instances) != 1 || !strings.HasPrefix(ev.Instances[0], "http://[::1]:8086/") {
		t.Fatalf("instances = %v; want one at http://[::1]:8086/", ev.Instances)
	}
	got, err := registry.ParseInstance(ev.Instances[0])
	if err != nil || got.Host() != "::1" || got.HostPort() != "[::1]:8086" {
		t.Fatalf("ParseInstance = %+v, %v", got, err)
	}
}

func TestRegistry_HTTPCheckFollowsHealthz(t *testing.T) {
	a := needAgent(t)
	var sick atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/healthz" || sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)

	r := newRegistry(t, a.Addr(), WithHTTPCheck(time.Second, time.Second))
	inst := registry.Instance{ID: "http-1", Name: "http-svc", Endpoints: []string{registry.EndpointURL("http", host, p)}}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 5*time.Second, "http-1 is passing", registrytest.Has(inst.ID))
	sick.Store(true)
	rec.WaitFor(t, 5*time.Second, "http-1 is critical", registrytest.Lacks(inst.ID))

	// The agent forgets the service: the Registry notices and registers it again.
	sick.Store(false)
	if err := r.Client().Agent().ServiceDeregister(inst.ID); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 5*time.Second, "http-1 is back", registrytest.Has(inst.ID))
	if s := r.Status(); s.Reregistrations != 1 {
		t.Fatalf("status = %+v, want 1 re-registration", s)
	}
}

func TestRegistry_DeregisterThenRegisterAgain(t *testing.T) {
	a := needAgent(t)
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL))
	inst := registry.Instance{ID: "again-1", Name: "again-svc", Endpoints: []string{"http://127.0.0.1:8087"}}
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	for round := range 2 {
		if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, 5*time.Second, "registered, round "+strconv.Itoa(round), registrytest.Has(inst.ID))
		if err := r.Deregister(ctxT(t, 5*time.Second), inst); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, 5*time.Second, "withdrawn, round "+strconv.Itoa(round), registrytest.Lacks(inst.ID))
	}
	// Withdrawn means withdrawn: no heartbeat brings it back.
	time.Sleep(testTTL / 2)
	if entries, _, err := r.Client().Health().Service(inst.Name, "", false, nil); err != nil || len(entries) != 0 {
		t.Fatalf("after Deregister the agent still has %v (%v)", entries, err)
	}
	if s := r.Status(); s.Reregistrations != 0 {
		t.Fatalf("deliberate re-registration counted as lost: %+v", s)
	}
}

func TestRegistry_CloseDeregistersStopsEverythingAndIsIdempotent(t *testing.T) {
	a := needAgent(t)
	r, err := New(context.Background(), WithAddress(a.Addr()), WithTTLCheck(testTTL))
	if err != nil {
		t.Fatal(err)
	}
	inst := registry.Instance{ID: "close-1", Name: "close-svc", Endpoints: []string{"http://127.0.0.1:8088"}}
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	in, err := r.NewInstancer(context.Background(), inst.Name)
	if err != nil {
		t.Fatal(err)
	}
	in.Stop()
	in.Stop()
	if _, err := r.NewInstancer(context.Background(), inst.Name); err != nil {
		t.Fatal(err) // left running: Close must stop it
	}
	done := make(chan error, 1)
	go func() { done <- r.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Register(context.Background(), inst); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close = %v", err)
	}
	if _, err := r.NewInstancer(context.Background(), inst.Name); !errors.Is(err, ErrClosed) {
		t.Fatalf("NewInstancer after Close = %v", err)
	}
	check := newRegistry(t, a.Addr())
	if entries, _, err := check.Client().Health().Service(inst.Name, "", false, nil); err != nil || len(entries) != 0 {
		t.Fatalf("Close left %d entries (%v)", len(entries), err)
	}
}

func TestRegister_RefusesInvalidInstancesBeforeCallingTheAgent(t *testing.T) {
	counter := &countingTransport{}
	r := newRegistry(t, "127.0.0.1:1", WithTransport(func(next http.RoundTripper) http.RoundTripper { counter.next = next; return counter }))
	ok := registry.Instance{ID: "x", Name: "svc", Endpoints: []string{"http://127.0.0.1:1"}}
	bad := map[string]func(*registry.Instance){
		"invalid instance": func(i *registry.Instance) { i.Endpoints = []string{"http://127.0.0.1:0"} },
		"reserved key":     func(i *registry.Instance) { i.Metadata = map[string]string{"version": "2"} },
		"dc key":           func(i *registry.Instance) { i.Metadata = map[string]string{"dc": "x"} },
		"bad key":          func(i *registry.Instance) { i.Metadata = map[string]string{"sp ace": "x"} },
		"consul prefix":    func(i *registry.Instance) { i.Metadata = map[string]string{"consul-x": "x"} },
		"long value":       func(i *registry.Instance) { i.Metadata = map[string]string{"k": strings.Repeat("v", 513)} },
	}
	for name, mut := range bad {
		inst := ok
		mut(&inst)
		if err := r.Register(context.Background(), inst); !errors.Is(err, registry.ErrInvalidInstance) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if n := counter.n.Load(); n != 0 {
		t.Fatalf("%d requests for invalid instances", n)
	}
}

func TestRegister_RetryingWhileAgentDownEndsOnClose(t *testing.T) {
	r, err := New(context.Background(), WithAddress("127.0.0.1:1"), WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- r.Register(context.Background(), registry.Instance{ID: "x", Name: "svc", Endpoints: []string{"http://127.0.0.1:1"}})
	}()
	waitState(t, r, registry.StateRetrying, 5*time.Second)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Register = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Register kept retrying after Close")
	}
}

func TestNextIndex_FollowsBlockingQueryRules(t *testing.T) {
	cases := []struct{ prev, got, want uint64 }{
		{0, 10, 10},
		{10, 10, 10},
		{10, 12, 12},
		{10, 3, 0}, // went backwards: start over
		{0, 0, 1},  // zero never blocks
		{5, 0, 0},
	}
	for _, c := range cases {
		if got := nextIndex(c.prev, c.got); got != c.want {
			t.Errorf("nextIndex(%d, %d) = %d, want %d", c.prev, c.got, got, c.want)
		}
	}
}

// stallAfterFirst passes the first request on and holds every later one
// until its context ends, as a loaded machine may hold an attempt.
type stallAfterFirst struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (s *stallAfterFirst) RoundTrip(req *http.Request) (*http.Response, error) {
	if s.n.Add(1) == 1 {
		return s.next.RoundTrip(req)
	}
	<-req.Context().Done()
	return nil, req.Context().Err()
}

func TestRegister_DeadlineNamesTheLastRealFailure(t *testing.T) {
	a := ownAgent(t) // ports chosen, not started: connections are refused
	st := &stallAfterFirst{}
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { st.next = next; return st }))
	inst := registry.Instance{ID: "cut-1", Name: "cut-svc", Endpoints: []string{"http://127.0.0.1:8086"}}
	err := r.Register(ctxT(t, 3*time.Second), inst)
	if st.n.Load() < 2 {
		t.Fatalf("%d requests; want a refused one and one the deadline cut", st.n.Load())
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connect") {
		t.Fatalf("Register = %v; want the deadline and the refusal that came before it", err)
	}
}
