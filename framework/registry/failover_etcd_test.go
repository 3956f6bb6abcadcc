package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// etcdRegion opens a Registry on srv under prefix with short timings.
func etcdRegion(t *testing.T, srv *embedetcd.Server, prefix string, logs *syncbuf.Buffer, opts ...etcd.Option) *etcd.Registry {
	t.Helper()
	base := []etcd.Option{
		etcd.WithEndpoints(srv.Endpoints()...),
		etcd.WithPrefix(prefix),
		etcd.WithTTL(3 * time.Second),
		etcd.WithBackoff(50*time.Millisecond, 500*time.Millisecond),
		etcd.WithDialTimeout(2 * time.Second),
		etcd.WithRequestTimeout(2 * time.Second),
		etcd.WithLogger(log.NewLogfmtLogger(logs)),
	}
	r, err := etcd.New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// Nothing of one failover lingers into the next, over a real etcd: a
// spill ended by the failover, the return, an etcd outage while the
// callers use the other region (its set kept, with the error, never an
// empty one), the return after it, and a second spill and failover that
// behave as the first did, logged and reported as the first were.
func TestFailover_OverEtcd_SecondFailoverAfterAnOutageBehavesAsTheFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	logs := &syncbuf.Buffer{}
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	}()
	obs := &foObserver{active: map[string]bool{}}
	eu := etcdRegion(t, srv, "eu", &syncbuf.Buffer{})
	us := etcdRegion(t, srv, "us", &syncbuf.Buffer{})
	caller := etcdRegion(t, srv, "eu", logs, etcd.WithFailoverPrefixes("us"), etcd.WithObserver(obs))
	l1, r1 := spillInst(1001), spillInst(2001)
	if err := us.Register(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := eu.Register(ctx, l1); err != nil {
		t.Fatal(err)
	}
	in, err := caller.Instancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	f := in.(*registry.Failover)
	defer f.Stop()
	rec := registrytest.Record(t, f)
	exactly := func(want []string, active, to int) func(sd.Event) bool {
		return func(ev sd.Event) bool {
			got := make([]string, len(ev.Instances))
			copy(got, ev.Instances)
			return strings.Join(got, " ") == strings.Join(want, " ") && ev.Err == nil && f.Active() == active && f.SpillingTo() == to
		}
	}
	wait := 30 * time.Second

	for round := 1; round <= 2; round++ {
		rec.WaitFor(t, wait, "the local set", exactly(strs(l1), 0, -1))
		if !f.Spill(true) {
			t.Fatalf("round %d: Spill(true) not held", round)
		}
		rec.WaitFor(t, wait, "the spill", exactly(strs(l1, r1), 0, 1))
		if err := eu.Deregister(ctx, l1); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, wait, "the failover", exactly(strs(r1), 1, -1))
		if f.Spilling() {
			t.Fatalf("round %d: the spill outlived the failover", round)
		}
		if !obs.is("user/us") || obs.is("user/eu") {
			t.Fatalf("round %d: failover_source eu=%v us=%v, want us alone", round, obs.is("user/eu"), obs.is("user/us"))
		}
		if round == 1 {
			// An outage while the callers use the other region: its set
			// is kept, with the error.
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			rec.WaitFor(t, wait, "the outage seen, the set kept", func(ev sd.Event) bool {
				return ev.Err != nil && len(ev.Instances) == 1
			})
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			rec.WaitFor(t, wait, "reads again", exactly(strs(r1), 1, -1))
		}
		if err := eu.Register(ctx, l1); err != nil {
			t.Fatal(err)
		}
	}
	rec.WaitFor(t, wait, "back home", exactly(strs(l1), 0, -1))
	for i, ev := range rec.Events() {
		if len(ev.Instances) == 0 {
			t.Fatalf("event %d had no instance: %+v", i, ev)
		}
	}
	for _, line := range []string{"discovery fails over", "discovery back to the local prefix", "discovery spills to us", "discovery stops spilling"} {
		if n := strings.Count(logs.String(), line); n != 2 {
			t.Errorf("%q logged %d times, want 2 (once a round)", line, n)
		}
	}
	if !obs.is("user/eu") || obs.is("user/us") {
		t.Fatalf("failover_source eu=%v us=%v at the end, want eu alone", obs.is("user/eu"), obs.is("user/us"))
	}
	f.Stop()
	f.Stop()
}
