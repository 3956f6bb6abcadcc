// Package registrytest is the conformance suite every registry backend
// passes: one set of behaviours, checked the same way against each
// backend's real server. A backend's tests (in this repository or a third
// party's) run it with a Harness:
//
//	func TestConformance(t *testing.T) {
//		registrytest.Run(t, registrytest.Harness{
//			Open:    func(t testing.TB) registry.Registry { ... a new client of the test server ... },
//			Restart: func(t testing.TB) { ... stop and start the server ... },
//		})
//	}
//
// The contract it checks is written down in docs/registry.md.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// Harness is what a backend gives the suite.
type Harness struct {
	// Open returns a new Registry on the backend's test server, as a
	// separate process would hold it: two Registries opened by Open must
	// see each other's instances. The suite closes every Registry it
	// opens.
	Open func(t testing.TB) registry.Registry
	// Restart stops the backend's server and starts it again where clients
	// look for it, returning once it serves. Nil means the backend has no
	// server that can restart (the memory backend); the restart case is
	// then not part of its contract and does not run.
	Restart func(t testing.TB)
	// AddedMetadata lists metadata keys the backend adds to discovered
	// instances by design (Consul adds "dc"); every other key must come
	// back exactly as registered.
	AddedMetadata []string
	// Timeout bounds each wait for a change to become visible; default
	// 30 s, generous for a loaded machine.
	Timeout time.Duration
	// Host is the address the suite's instances publish; default
	// 127.0.0.1. The suite never dials it. A backend whose server refuses
	// loopback addresses (Kubernetes, for Pod and EndpointSlice IPs) sets
	// one from the documentation range 192.0.2.0/24.
	Host string
	// Lease is how long the backend keeps the record of a process that
	// stopped renewing it — the etcd lease TTL, the Consul check TTL, the
	// ZooKeeper session timeout the Registries from Open use — or NoLease
	// for a backend whose records do not expire (memory; Kubernetes, where
	// the Pod's readiness is the record). Required: the suite holds a
	// registration across three leases (it must never leave discovery, and
	// Status must stay registered: a renewal that comes too late fails),
	// and Deregister and Close must remove a record within half a lease
	// (a withdrawal that only stops renewing, leaving the record to
	// expire, fails). Choose a lease in which a change shows well within
	// half on a loaded machine, and short enough to hold three times: 6 s
	// suits.
	Lease time.Duration
}

// NoLease is Harness.Lease for a backend whose records do not expire.
const NoLease time.Duration = -1

// noLeaseHold is how long the suite holds a registration of a backend
// without leases.
const noLeaseHold = 3 * time.Second

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.Open == nil {
		t.Fatal("registrytest: Harness.Open is nil")
	}
	if h.Lease == 0 {
		t.Fatal("registrytest: Harness.Lease is 0: set the lease (TTL, session timeout) the Registries from Open use, or registrytest.NoLease")
	}
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	s := &suite{h: h}
	cases := []struct {
		name string
		run  func(*testing.T)
	}{
		{"RegisterIsVisibleWithEveryField", s.registerIsVisibleWithEveryField},
		{"DeregisterRemovesAndUnknownIsNoError", s.deregisterRemoves},
		{"ReRegisterOfOwnInstanceReplacesIt", s.reRegisterReplaces},
		{"SameIDSameAddressFromAnotherProcessTakesOver", s.sameAddressTakesOver},
		{"SameIDOtherAddressIsRefusedWithErrConflict", s.otherAddressConflicts},
		{"StatusReportsTheWorstOfAllRegistrations", s.status},
		{"InvalidNamesAreRefusedWithErrInvalidInstance", s.invalidNames},
		{"CloseWithdrawsAndIsIdempotent", s.closeWithdraws},
		{"CallsAfterClose", s.callsAfterClose},
		{"InstancerStopIsIdempotent", s.instancerStop},
		{"InstancerStopEndsItsSubscriptions", s.instancerStopEndsItsSubscriptions},
		{"CloseStopsItsInstancers", s.closeStopsItsInstancers},
		{"ChannelOfTwoInstancersOutlivesTheStopOfOne", s.channelOfTwoInstancersOutlivesOne},
		{"StopOrDeregisterFromItsHandler", s.stopFromItsHandler},
		{"FirstEventAfterInstancerHasTheSet", s.firstEventHasTheSet},
		{"WatcherSeesChangesInOrder", s.watcherInOrder},
		{"CatalogListsServicesWithInstances", s.catalog},
		{"RegistrationIsHeldAcrossLeases", s.heldAcrossLeases},
		{"ConcurrentCallsAreSafe", s.concurrentCalls},
	}
	if h.Restart != nil {
		cases = append(cases, struct {
			name string
			run  func(*testing.T)
		}{"RegistrationsSurviveAServerRestart", s.survivesRestart})
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
		if what := s.hung.Load(); what != nil {
			// Every later case would wait out its own hang: stop here,
			// with the cause named, before go test's -timeout panics.
			t.Fatalf("registrytest: stopped after %s: %s hung", c.name, *what)
		}
	}
}

type suite struct {
	h    Harness
	seq  atomic.Int64
	hung atomic.Pointer[string] // a Close or Stop that did not return
}

// service returns a service name no other test of this run uses, so
// backends may share one server across the suite.
func (s *suite) service() string {
	return fmt.Sprintf("rt%d-%d", os.Getpid()%100000, s.seq.Add(1))
}

// Sample returns an instance with every field set, as the suite registers
// it: the fields must all come back from discovery unchanged. It serves two
// transports (HTTPS and gRPC on port), so backends keep every endpoint.
func Sample(service string, n, port int) registry.Instance {
	return registry.Instance{
		ID:   fmt.Sprintf("%s-%d", service, n),
		Name: service,
		Endpoints: []string{
			registry.EndpointURL("https", "127.0.0.1", port),
			registry.EndpointURL("grpc", "127.0.0.1", port),
		},
		Version:  "1.2.3",
		Zone:     "zone-b",
		Weight:   42,
		Tags:     []string{"blue", "canary"},
		Metadata: map[string]string{"build": "abc-123", "team_x": "core"},
	}
}

// sample is Sample at the Harness's Host.
func (s *suite) sample(service string, n, port int) registry.Instance {
	inst := Sample(service, n, port)
	if s.h.Host != "" {
		for i, ep := range inst.Endpoints {
			inst.Endpoints[i] = strings.Replace(ep, "://127.0.0.1:", "://"+s.h.Host+":", 1)
		}
	}
	return inst
}

func (s *suite) open(t *testing.T) registry.Registry {
	t.Helper()
	r := s.h.Open(t)
	if r == nil {
		t.Fatal("Harness.Open returned nil")
	}
	t.Cleanup(func() { s.bounded(t, "Registry.Close", func() { r.Close() }) })
	return r
}

// bounded runs f, failing the test if it has not returned within the
// harness's timeout: a Close or Stop that hangs is a failed case that
// names it, not a test binary killed by go test's -timeout.
func (s *suite) bounded(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	timer := time.NewTimer(s.h.Timeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		s.hung.Store(&what)
		t.Errorf("%s did not return within %s", what, s.h.Timeout)
	}
}

// removalWait bounds the wait for a withdrawal to show: a lease (its
// half is the rule; past a whole one the verdict is known, so a backend
// that never withdraws fails in seconds, not after the harness's
// timeout), or the timeout without leases.
func (s *suite) removalWait() time.Duration {
	if s.h.Lease == NoLease {
		return s.h.Timeout
	}
	return s.h.Lease
}

// withinHalfALease fails the test if a removal that started at start was
// seen only after half a lease: then it was the record expiring, not the
// withdrawal the call promises.
func (s *suite) withinHalfALease(t *testing.T, what string, start time.Time) {
	t.Helper()
	if s.h.Lease == NoLease {
		return
	}
	if took := time.Since(start); took >= s.h.Lease/2 {
		t.Errorf("%s: the record left discovery %s after the call, not within half the %s lease: "+
			"it expired instead of being withdrawn", what, took.Round(time.Millisecond), s.h.Lease)
	}
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) register(t *testing.T, r registry.Registry, inst registry.Instance) {
	t.Helper()
	if err := r.Register(s.ctx(t), inst); err != nil {
		t.Fatalf("Register %s: %v", inst.ID, err)
	}
}

func (s *suite) deregister(t *testing.T, r registry.Registry, inst registry.Instance) {
	t.Helper()
	if err := r.Deregister(s.ctx(t), inst); err != nil {
		t.Fatalf("Deregister %s: %v", inst.ID, err)
	}
}

// stripAdded removes the metadata keys the backend adds by design.
func (s *suite) stripAdded(inst registry.Instance) registry.Instance {
	if len(inst.Metadata) == 0 {
		return inst
	}
	md := maps.Clone(inst.Metadata)
	for _, k := range s.h.AddedMetadata {
		delete(md, k)
	}
	if len(md) == 0 {
		md = nil
	}
	inst.Metadata = md
	return inst
}

// same reports whether a discovered instance is inst, field for field.
func (s *suite) same(got, inst registry.Instance) bool {
	got = s.stripAdded(got)
	want := inst
	want.Tags = slices.Sorted(slices.Values(inst.Tags))
	if len(want.Tags) == 0 {
		want.Tags = nil
	}
	if len(want.Metadata) == 0 {
		want.Metadata = nil
	}
	return reflect.DeepEqual(got, want)
}

func (s *suite) registerIsVisibleWithEveryField(t *testing.T) {
	svc := s.service()
	a, b := s.open(t), s.open(t)
	w := s.watch(t, b, svc)
	inst := s.sample(svc, 1, 20001)
	s.register(t, a, inst)
	ev := w.waitFor(t, "the sample instance with every field", func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil && s.same(got, inst)
	})
	got, _ := ev.byID(inst.ID)
	for k := range s.stripAdded(got).Metadata {
		if _, ok := inst.Metadata[k]; !ok {
			t.Errorf("metadata key %q appeared from nowhere", k)
		}
	}
	if n := len(ev.Instances); n != 1 {
		t.Errorf("%d instances, want 1: %v", n, ev.Instances)
	}
}

func (s *suite) deregisterRemoves(t *testing.T) {
	svc := s.service()
	a, b := s.open(t), s.open(t)
	w := s.watch(t, b, svc)
	one, two := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)
	s.register(t, a, one)
	s.register(t, a, two)
	w.waitFor(t, "both instances", w.exactly(one.ID, two.ID))
	start := time.Now()
	s.deregister(t, a, one)
	w.waitForWithin(t, s.removalWait(), "only the second (withdrawn, not left to expire)", w.exactly(two.ID))
	s.withinHalfALease(t, "Deregister", start)
	s.deregister(t, a, one) // again: not an error
	unknown := s.sample(svc, 9, 20009)
	s.deregister(t, a, unknown) // never registered: not an error
	s.deregister(t, a, two)
	w.waitFor(t, "no instance", w.exactly())
}

func (s *suite) reRegisterReplaces(t *testing.T) {
	svc := s.service()
	a, b := s.open(t), s.open(t)
	w := s.watch(t, b, svc)
	inst := s.sample(svc, 1, 20001)
	s.register(t, a, inst)
	s.register(t, a, inst) // the same record again: a no-op
	w.waitFor(t, "the instance", w.exactly(inst.ID))
	changed := inst
	changed.Version, changed.Zone, changed.Weight = "2.0.0", "zone-c", 7
	s.register(t, a, changed)
	w.waitFor(t, "the changed record in place of the old one", func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil && len(ev.Instances) == 1 && s.same(got, changed)
	})
}

func (s *suite) sameAddressTakesOver(t *testing.T) {
	svc := s.service()
	old, fresh, watcher := s.open(t), s.open(t), s.open(t)
	w := s.watch(t, watcher, svc)
	inst := s.sample(svc, 1, 20001)
	s.register(t, old, inst)
	w.waitFor(t, "the old process's record", w.exactly(inst.ID))
	// A restarted process: same ID, same address, a new Registry; the old
	// one has not gone away yet (a lease or check still holds its record).
	next := inst
	next.Version = "2.0.0"
	s.register(t, fresh, next)
	isNext := func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil && len(ev.Instances) == 1 && s.same(got, next)
	}
	w.waitFor(t, "the new process's record, once", isNext)
	if err := old.Close(); err != nil {
		t.Fatalf("Close of the old process: %v", err)
	}
	// Whatever the old process's shutdown did, the new record is what
	// discovery shows afterwards. The latest event may still predate what
	// Close did, so a marker registered once Close returned is the
	// barrier: sets that show it come after Close, and one of them must
	// hold the new record. (Not the first: a Consul agent drops the new
	// process's copy with the old one's and has it back at the next
	// heartbeat, docs/registry-consul.md.)
	marker := s.sample(svc, 2, 20002)
	s.register(t, watcher, marker)
	w.waitFor(t, "the new record beside a marker registered after the old process closed", func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		_, marked := ev.byID(marker.ID)
		return ok && marked && ev.Err == nil && len(ev.Instances) == 2 && s.same(got, next)
	})
	if st := status(t, fresh); st.State != registry.StateRegistered {
		t.Fatalf("new process's Status = %+v, want registered", st)
	}
}

func (s *suite) otherAddressConflicts(t *testing.T) {
	svc := s.service()
	holder, intruder, watcher := s.open(t), s.open(t), s.open(t)
	w := s.watch(t, watcher, svc)
	inst := s.sample(svc, 1, 20001)
	s.register(t, holder, inst)
	w.waitFor(t, "the holder's record", w.exactly(inst.ID))
	other := inst
	other.Endpoints = s.sample(svc, 1, 20002).Endpoints
	err := intruder.Register(s.ctx(t), other)
	if !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("Register of a held ID at another address: err = %v, want registry.ErrConflict", err)
	}
	if st := status(t, intruder); st.State == registry.StateRegistered {
		t.Errorf("refused process's Status = %+v, want not registered", st)
	}
	if st := status(t, holder); st.State != registry.StateRegistered {
		t.Errorf("holder's Status = %+v, want registered", st)
	}
	// The refusal changed nothing: the holder's record stays, at its port.
	w.waitFor(t, "the holder's record unchanged", func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil && len(ev.Instances) == 1 && s.same(got, inst)
	})
	// Once the holder withdraws, the ID is free for the other address.
	s.deregister(t, holder, inst)
	w.waitFor(t, "no instance", w.exactly())
	s.register(t, intruder, other)
	w.waitFor(t, "the other address now", func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil && got.HostPort() == other.HostPort()
	})
}

func status(t *testing.T, r registry.Registry) registry.Status {
	t.Helper()
	sr, ok := r.(registry.StatusReporter)
	if !ok {
		t.Fatalf("%T does not implement registry.StatusReporter", r)
	}
	return sr.Status()
}

func (s *suite) status(t *testing.T) {
	svc := s.service()
	r := s.open(t)
	wantState := func(step string, want registry.State) {
		t.Helper()
		if st := status(t, r); st.State != want {
			t.Fatalf("%s: Status = %+v, want %s", step, st, want)
		}
	}
	wantState("before any Register", registry.StateUnregistered)
	a, b := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)
	before := time.Now()
	s.register(t, r, a)
	wantState("after Register a", registry.StateRegistered)
	if st := status(t, r); st.Since.Before(before.Add(-time.Second)) {
		t.Errorf("Since = %s, before the registration at %s", st.Since, before)
	}
	s.register(t, r, b)
	// Withdrawing one of two leaves the process registered: Status is about
	// every registration, not the last call.
	s.deregister(t, r, b)
	wantState("after Deregister b with a still registered", registry.StateRegistered)
	s.deregister(t, r, a)
	wantState("after Deregister of every instance", registry.StateWithdrawn)
	s.register(t, r, a)
	wantState("after Register a again", registry.StateRegistered)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	wantState("after Close", registry.StateWithdrawn)
}

func (s *suite) invalidNames(t *testing.T) {
	r := s.open(t)
	for _, name := range []string{"", "Upper", "under_score", "has space", "-dash-first", "a/b"} {
		inst := s.sample("x", 1, 20001)
		inst.Name = name
		if err := r.Register(s.ctx(t), inst); !errors.Is(err, registry.ErrInvalidInstance) {
			t.Errorf("Register with name %q: err = %v, want registry.ErrInvalidInstance", name, err)
		}
		in, err := r.Instancer(s.ctx(t), name)
		if !errors.Is(err, registry.ErrInvalidInstance) {
			t.Errorf("Instancer(%q): err = %v, want registry.ErrInvalidInstance", name, err)
		}
		if in != nil { // a typed nil inside the interface counts: callers test in != nil
			t.Errorf("Instancer(%q) returned a non-nil sd.Instancer (%T) with its error", name, in)
		}
	}
	bad := s.sample(s.service(), 1, 0) // port 0: invalid instance, valid name
	if err := r.Register(s.ctx(t), bad); !errors.Is(err, registry.ErrInvalidInstance) {
		t.Errorf("Register with port 0: err = %v, want registry.ErrInvalidInstance", err)
	}
}

func (s *suite) closeWithdraws(t *testing.T) {
	svc := s.service()
	r, watcher := s.open(t), s.open(t)
	w := s.watch(t, watcher, svc)
	one, two := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)
	s.register(t, r, one)
	s.register(t, r, two)
	w.waitFor(t, "both instances", w.exactly(one.ID, two.ID))
	start := time.Now()
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	w.waitForWithin(t, s.removalWait(), "none after Close (withdrawn, not left to expire)", w.exactly())
	s.withinHalfALease(t, "Close", start)
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func (s *suite) callsAfterClose(t *testing.T) {
	svc := s.service()
	r := s.open(t)
	inst := s.sample(svc, 1, 20001)
	s.register(t, r, inst)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(s.ctx(t), inst); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Register after Close: err = %v, want registry.ErrClosed", err)
	}
	in, err := r.Instancer(s.ctx(t), svc)
	if !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Instancer after Close: err = %v, want registry.ErrClosed", err)
	}
	if in != nil {
		t.Errorf("Instancer after Close returned a non-nil sd.Instancer (%T)", in)
	}
	// A shutdown path may withdraw after closing: everything is withdrawn
	// already, so there is nothing to report.
	if err := r.Deregister(s.ctx(t), inst); err != nil {
		t.Errorf("Deregister after Close: err = %v, want nil", err)
	}
}

func (s *suite) instancerStop(t *testing.T) {
	svc := s.service()
	r := s.open(t)
	in, err := r.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		in.Stop()
		in.Stop()
		// An instancer still running when its Registry closes: Close stops
		// it, and the owner's own Stop afterwards is harmless.
		in2, err := r.Instancer(context.Background(), svc)
		if err != nil {
			t.Errorf("second Instancer: %v", err)
			return
		}
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		in2.Stop()
		in2.Stop()
	}()
	select {
	case <-done:
	case <-time.After(s.h.Timeout):
		t.Fatal("Stop or Close hung")
	}
}

func (s *suite) watcherInOrder(t *testing.T) {
	svc := s.service()
	r, watcher := s.open(t), s.open(t)
	w := s.watch(t, watcher, svc)
	w.waitFor(t, "the empty starting set", w.exactly())
	a, b, c := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002), s.sample(svc, 3, 20003)
	// The states the backend passes through, in order; a watcher may
	// skip some (changes can be coalesced) but never go back.
	states := [][]string{{}, {a.ID}, {a.ID, b.ID}, {b.ID}, {b.ID, c.ID}, {c.ID}}
	s.register(t, r, a)
	s.register(t, r, b)
	s.deregister(t, r, a)
	s.register(t, r, c)
	s.deregister(t, r, b)
	w.waitFor(t, "the final set", w.exactly(c.ID))
	at := 0
	for i, ev := range w.history() {
		if ev.Err != nil {
			continue // carries the last good set; not a new state
		}
		ids := ev.ids()
		j := slices.IndexFunc(states, func(st []string) bool { return slices.Equal(st, ids) })
		switch {
		case j < 0:
			t.Fatalf("event %d: set %v was never the registry's state %v", i, ids, states)
		case j < at:
			t.Fatalf("event %d: set %v goes back from state %v to %v", i, ids, states[at], states[j])
		}
		at = j
	}
}

func (s *suite) survivesRestart(t *testing.T) {
	svc := s.service()
	r, watcher := s.open(t), s.open(t)
	w := s.watch(t, watcher, svc)
	inst := s.sample(svc, 1, 20001)
	s.register(t, r, inst)
	w.waitFor(t, "the instance", w.exactly(inst.ID))
	s.h.Restart(t)
	w.waitFor(t, "the instance again after the restart, with no error", func(ev event) bool {
		got, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil && len(ev.Instances) == 1 && s.same(got, inst)
	})
	deadline := time.Now().Add(s.h.Timeout)
	for status(t, r).State != registry.StateRegistered {
		if time.Now().After(deadline) {
			t.Fatalf("Status after the restart = %+v, want registered", status(t, r))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The registrar still works: a second instance appears, a withdrawal
	// disappears.
	two := s.sample(svc, 2, 20002)
	s.register(t, r, two)
	w.waitFor(t, "both after the restart", w.exactly(inst.ID, two.ID))
	s.deregister(t, r, inst)
	w.waitFor(t, "only the second", w.exactly(two.ID))
}

// catalog checks registry.Catalog, for backends that implement it: a
// service is listed once an instance of it is visible, and no longer once
// its last instance is gone.
func (s *suite) catalog(t *testing.T) {
	a := s.open(t)
	cat, ok := a.(registry.Catalog)
	if !ok {
		t.Skip("the backend is no registry.Catalog (optional)")
	}
	// Three services, registered against their sorted order, so a list
	// in registration or map order is seen unsorted.
	base := s.service()
	svcs := []string{base + "-c", base + "-b", base + "-a"}
	listed := func() int { // how many of svcs Services lists
		names, err := cat.Services(s.ctx(t))
		if err != nil {
			t.Fatalf("Services: %v", err)
		}
		if !slices.IsSorted(names) {
			t.Fatalf("Services = %q: not sorted", names)
		}
		n := 0
		for _, svc := range svcs {
			if slices.Contains(names, svc) {
				n++
			}
		}
		return n
	}
	eventually := func(what string, want int) {
		t.Helper()
		deadline := time.Now().Add(s.h.Timeout)
		for listed() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Services: %s within %s", what, s.h.Timeout)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if listed() != 0 {
		t.Fatalf("Services lists one of %q before any instance registered", svcs)
	}
	for _, svc := range svcs {
		s.register(t, a, s.sample(svc, 1, 20001))
	}
	eventually("the registered services are listed", len(svcs))
	for range 5 { // a list in map order comes out sorted 1 time in 6
		listed()
	}
	for _, svc := range svcs {
		s.deregister(t, a, s.sample(svc, 1, 20001))
	}
	eventually("the services without instances are no longer listed", 0)
	a.Close()
	if _, err := cat.Services(context.Background()); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("Services after Close = %v, want registry.ErrClosed", err)
	}
}
