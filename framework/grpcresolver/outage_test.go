package grpcresolver_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// openEtcd returns a registry client of s under the test's own prefix.
func openEtcd(t *testing.T, s *embedetcd.Server) registry.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(s.Endpoints()...), etcd.WithPrefix("idle"),
		etcd.WithTTL(5*time.Second), etcd.WithInitialWait(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}

// A channel that went idle (grpc-go closes its resolver then, by default
// after 30 idle minutes) and is used again while the registry is down
// keeps calling the instances it resolved before: the new resolver
// cannot read the registry, and the builder's last good set of the
// service stands, as a running watch's does through an outage. Before,
// the new resolver reported the registry's error alone and every call
// failed with Unavailable until the registry came back, the instances
// being up all along.
func TestResolver_AChannelBackFromIdleDuringAnOutageKeepsTheLastSet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	grpctest.StartApp(t, openEtcd(t, srv), "idler", "a")
	b, err := grpcresolver.NewBuilder(openEtcd(t, srv), grpcresolver.WithOpenTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("warren:///idler", grpc.WithResolvers(b),
		grpc.WithIdleTimeout(time.Second),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	call := func() (string, error) {
		cctx, ccancel := context.WithTimeout(ctx, 15*time.Second)
		defer ccancel()
		return grpctest.Say(cctx, cc, "id")
	}
	if id, err := call(); err != nil || id != "a" {
		t.Fatalf("before the outage: %q, %v", id, err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	defer srv.Start() // the App's release then finds it
	waitIdle := func() {
		t.Helper()
		for cc.GetState() != connectivity.Idle {
			if !cc.WaitForStateChange(ctx, cc.GetState()) {
				t.Fatalf("channel not idle before the test's deadline (state %v)", cc.GetState())
			}
		}
	}
	waitIdle()
	// Twice: a channel that left idle during the outage and went idle
	// again still has the set.
	for round := range 2 {
		if id, err := call(); err != nil || id != "a" {
			t.Fatalf("round %d: a call after idle with the registry down = %q, %v; want instance a, which is up", round, id, err)
		}
		waitIdle()
	}
}

// A resolver whose registry reads fail from the start, in a builder that
// never had a set of the service, reports the error: there is nothing to
// fall back to. One that had a set in the same builder is handed it; and
// an empty set from the registry is remembered as such.
func TestResolver_TheBuilderFallsBackOnlyToAGoodSetOfTheSameService(t *testing.T) {
	a := registry.Instance{ID: "a", Name: "mem", Endpoints: []string{"grpc://127.0.0.1:7201"}}.String()
	c := registry.NewCache()
	b, _ := grpcresolver.NewBuilder(cacheDiscovery{c})
	build := func(svc string) (*recorder, func()) {
		t.Helper()
		rec := &recorder{}
		r, err := b.Build(target(svc), rec, resolver.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return rec, r.Close
	}
	waitFor := func(what string, rec *recorder, cond func(states []resolver.State, errs []error) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			rec.mu.Lock()
			ok := cond(slices.Clone(rec.states), slices.Clone(rec.errs))
			rec.mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	down := errors.New("registry unreachable")

	// No set ever: the error.
	c.Update(sd.Event{Err: down})
	rec, closeR := build("mem")
	waitFor("the error reported", rec, func(st []resolver.State, errs []error) bool {
		return len(errs) == 1 && strings.Contains(errs[0].Error(), "registry unreachable") && len(st) == 0
	})
	// A set, then the resolver closed (idle) and the registry failing.
	c.Update(sd.Event{Instances: []string{a}})
	waitFor("the set", rec, func(st []resolver.State, _ []error) bool { return len(st) == 1 })
	closeR()
	c.Update(sd.Event{Err: down})
	rec, closeR = build("mem")
	waitFor("the last set handed to the new resolver", rec, func(st []resolver.State, errs []error) bool {
		return len(st) == 1 && len(st[0].Addresses) == 1 && st[0].Addresses[0].Addr == "127.0.0.1:7201" && len(errs) == 0
	})
	// Another service of the same builder has no set to fall back to.
	other, closeOther := build("other")
	waitFor("the other service's error", other, func(st []resolver.State, errs []error) bool { return len(errs) == 1 && len(st) == 0 })
	closeOther()
	// The registry still failing, differently: the set stands, and the
	// channel hears of no error, as from a watch that loses the registry
	// (its backend sends the last set with the error).
	c.Update(sd.Event{Err: errors.New("registry still unreachable")})
	c.Update(sd.Event{Err: errors.New("registry unreachable, again")})
	b2 := registry.Instance{ID: "b", Name: "mem", Endpoints: []string{"grpc://127.0.0.1:7202"}}.String()
	c.Update(sd.Event{Instances: []string{a, b2}}) // back: the barrier
	waitFor("the registry's set after it is back", rec, func(st []resolver.State, _ []error) bool { return len(st) == 2 })
	if _, errs, _ := rec.last(); len(errs) != 0 {
		t.Fatalf("errors reported while the builder's set stood: %v", errs)
	}
	// The registry then says the service has no instance: that is
	// remembered too.
	c.Update(sd.Event{Instances: []string{}})
	waitFor("the empty set", rec, func(st []resolver.State, _ []error) bool { return len(st) == 3 && len(st[2].Addresses) == 0 })
	closeR()
	c.Update(sd.Event{Err: down})
	rec, closeR = build("mem")
	defer closeR()
	waitFor("the error after an empty set", rec, func(st []resolver.State, errs []error) bool {
		return len(errs) == 1 && len(st) == 0
	})
}

// A target with an authority or a query is refused: both would be
// ignored, and a caller who meant a registry or a filter by them would
// get every instance of the builder's registry without a word.
func TestBuild_RefusesWhatItWouldIgnore(t *testing.T) {
	b, _ := grpcresolver.NewBuilder(cacheDiscovery{registry.NewCache()})
	for _, s := range []string{"warren://etcd.prod:2379/user", "warren:///user?zone=eu", "warren:///user?", "warren://user"} {
		if r, err := b.Build(resolver.Target{URL: *mustURL(s)}, &recorder{}, resolver.BuildOptions{}); err == nil {
			r.Close()
			t.Errorf("Build(%q) succeeded", s)
		}
	}
	for _, s := range []string{"warren:///user", "warren:user"} {
		r, err := b.Build(resolver.Target{URL: *mustURL(s)}, &recorder{}, resolver.BuildOptions{})
		if err != nil {
			t.Errorf("Build(%q) = %v", s, err)
			continue
		}
		r.Close()
		r.Close() // idempotent
	}
}

// A registry outage and its end, then every instance leaving and one
// coming back, through a real etcd and grpc-go's round_robin: calls keep
// reaching the instance through the outage (the last set stands, nothing
// empty reaches the channel), an instance that joins after it is used,
// calls fail while the service has none, and one that comes back is
// found again. A guard: it passes on the code before audit s2.
func TestResolver_AnOutageThenEveryInstanceLeavingAndOneComingBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a := grpctest.StartApp(t, openEtcd(t, srv), "cycle", "a")
	b, _ := grpcresolver.NewBuilder(openEtcd(t, srv))
	cc, err := grpc.NewClient("warren:///cycle", grpc.WithResolvers(b),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	call := func() (string, error) {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		defer ccancel()
		return grpctest.Say(cctx, cc, "id")
	}
	// until calls up to n times, 20 ms apart, until ok says the answer
	// is the one wanted.
	until := func(what string, n int, ok func(string, error) bool) {
		t.Helper()
		var id string
		var err error
		for range n {
			if id, err = call(); ok(id, err) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: not within %d calls; the last = %q, %v", what, n, id, err)
	}
	until("a answers", 500, func(id string, err error) bool { return err == nil && id == "a" })

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 100 { // about 2 s of the outage, and more on a loaded machine
		if id, err := call(); err != nil || id != "a" {
			t.Fatalf("call %d during the outage = %q, %v; want a, which is up", i, id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	bApp := grpctest.StartApp(t, openEtcd(t, srv), "cycle", "b")
	until("b, registered after the outage, answers", 3000, func(id string, err error) bool { return err == nil && id == "b" })

	// Every instance leaves.
	for _, app := range []*grpctest.App{a, bApp} {
		if err := app.Shutdown(); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	until("calls fail with no instance", 3000, func(_ string, err error) bool { return status.Code(err) == codes.Unavailable })
	grpctest.StartApp(t, openEtcd(t, srv), "cycle", "c")
	until("c, registered after every instance left, answers", 3000, func(id string, err error) bool { return err == nil && id == "c" })
}

// Close while the registry's events keep coming: Close returns, and no
// event reaches the channel after it. A guard: it passes on the code
// before audit s2.
func TestResolver_CloseWhileUpdatesAreDeliveredEndsThem(t *testing.T) {
	one := registry.Instance{ID: "1", Name: "busy", Endpoints: []string{"grpc://127.0.0.1:7301"}}.String()
	two := registry.Instance{ID: "2", Name: "busy", Endpoints: []string{"grpc://127.0.0.1:7302"}}.String()
	c := registry.NewCache()
	b, _ := grpcresolver.NewBuilder(cacheDiscovery{c})
	for round := range 20 {
		rec := &recorder{}
		r, err := b.Build(target("busy"), rec, resolver.BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		flooded := make(chan struct{})
		go func() { // ends at stop
			defer close(flooded)
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					c.Update(sd.Event{Instances: []string{one}})
				} else {
					c.Update(sd.Event{Instances: []string{one, two}})
				}
			}
		}()
		deadline := time.Now().Add(10 * time.Second)
		for n := 0; n < 3; {
			rec.mu.Lock()
			n = len(rec.states)
			rec.mu.Unlock()
			if time.Now().After(deadline) {
				close(stop)
				t.Fatalf("round %d: %d states within 10s, want 3", round, n)
			}
			time.Sleep(time.Millisecond)
		}
		closed := make(chan struct{})
		go func() { r.Close(); r.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			close(stop)
			t.Fatalf("round %d: Close did not return within 10s", round)
		}
		rec.mu.Lock()
		n := len(rec.states)
		rec.mu.Unlock()
		c.Update(sd.Event{Instances: []string{two}})
		c.Update(sd.Event{Instances: []string{one}})
		close(stop)
		<-flooded
		rec.mu.Lock()
		after := len(rec.states)
		rec.mu.Unlock()
		if after != n {
			t.Fatalf("round %d: %d states reached the channel after Close", round, after-n)
		}
	}
}
