package etcd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// emptied reports whether any event so far had no instances.
func emptied(rec *registrytest.Recorder) bool {
	for _, ev := range rec.Events() {
		if len(ev.Instances) == 0 {
			return true
		}
	}
	return false
}

// outageThenLapse registers a and b under one short lease kept alive by
// a raw client, starts an instancer, stops etcd until the instancer has
// noticed, stops the keepalive (the registrars "gave up"), and starts etcd
// again: the restarted etcd expires the lease a TTL later, as it does to a
// mesh whose registrars are still backing off.
func outageThenLapse(t *testing.T, hold time.Duration) (*Instancer, *registrytest.Recorder, *clientv3.Client, *Registry, registry.Instance) {
	t.Helper()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithReconnectHold(hold))
	raw := rawClient(t, srv)
	ctx := testCtx(t)
	a, b := testInstance(8080), testInstance(8081)
	lease, err := raw.Grant(ctx, int64(testTTL/time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kctx, stopKeepAlive := context.WithCancel(ctx)
	defer stopKeepAlive()
	if _, err := raw.KeepAlive(kctx, lease.ID); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []registry.Instance{a, b} {
		if _, err := raw.Put(ctx, r.key(inst), mustRecord(t, inst), clientv3.WithLease(lease.ID)); err != nil {
			t.Fatal(err)
		}
	}
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	waitFor(t, 10*time.Second, "set {a, b}", func() bool { return hasExactly(in, a, b) })
	rec := registrytest.Record(t, in)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the instancer to notice the outage", func() bool { return in.State().Err != nil })
	stopKeepAlive()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The lease outlives the restart by a TTL, then its records go.
	waitFor(t, 20*time.Second, "the lapsed records to be deleted", func() bool {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := raw.Get(c, r.key(a))
		return err == nil && len(resp.Kvs) == 0
	})
	return in, rec, raw, r, a
}

// Right after an outage every record of a service may lapse a moment
// before its registrars re-register. Within the reconnect hold the
// instancer keeps the last set (with an error saying so) instead of an
// empty one, and the first record back ends the hold.
func TestInstancer_KeepsLastSetWhenEveryRecordLapsesRightAfterAnOutage(t *testing.T) {
	in, rec, raw, r, a := outageThenLapse(t, time.Minute)
	// Give the deletions time to reach the instancer.
	waitFor(t, 10*time.Second, "the held set", func() bool {
		ev := in.State()
		return errors.Is(ev.Err, ErrHeldAfterReconnect) && len(ev.Instances) == 2
	})
	if emptied(rec) {
		t.Fatal("an empty set was published within the reconnect hold")
	}
	putRecord(t, raw, r, a) // a's registrar is back
	waitFor(t, 10*time.Second, "set {a} without error", func() bool { return hasExactly(in, a) })
	if emptied(rec) {
		t.Fatal("an empty set was published when the hold ended")
	}
}

// The hold is bounded: with no record back, the empty set is published
// when it ends.
func TestInstancer_ReconnectHoldEnds(t *testing.T) {
	in, _, _, _, _ := outageThenLapse(t, 3*time.Second)
	waitFor(t, 15*time.Second, "the empty set after the hold", func() bool { return hasExactly(in) })
}

// With the hold off the lapse reaches subscribers as an empty set: the
// mechanism above is what keeps it from them.
func TestInstancer_ReconnectHoldOffPublishesTheLapse(t *testing.T) {
	in, rec, _, _, _ := outageThenLapse(t, 0)
	waitFor(t, 15*time.Second, "the empty set", func() bool { return hasExactly(in) })
	if !emptied(rec) {
		t.Fatal("no empty event recorded")
	}
}

// An outage is one warning however many times the instancer retries,
// and its end is logged: the instancer retried every backoff step and
// logged a warning each time, and never said when reads worked again.
func TestInstancer_LogsAnOutageOnceAndItsEnd(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, logs := newTestRegistry(t, srv, testPrefix(t), WithRequestTimeout(300*time.Millisecond))
	ctx := testCtx(t)
	a := testInstance(8080)
	putRecord(t, rawClient(t, srv), r, a)
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	waitFor(t, 10*time.Second, "set {a}", func() bool { return hasExactly(in, a) })
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Several failed reads: the connection's loss and then listings.
	waitFor(t, 30*time.Second, "three failed reads", func() bool {
		return strings.Count(logs.String(), `msg="cannot read etcd`) >= 3
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the end of the outage logged", func() bool {
		return strings.Contains(logs.String(), `level=info service=user msg="etcd readable again"`)
	})
	if n := strings.Count(logs.String(), `level=warn service=user msg="cannot read etcd; keeping last good set" instances=1`); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1:\n%s", n, logs)
	}
	waitFor(t, 10*time.Second, "set {a} without error", func() bool { return hasExactly(in, a) && in.State().Err == nil })
}

// keptAlive puts each of insts under a lease of its own kept alive by
// raw until the returned func is called (that registrar "gave up").
func keptAlive(t *testing.T, raw *clientv3.Client, r *Registry, insts ...registry.Instance) (stop func()) {
	t.Helper()
	ctx := testCtx(t)
	lease, err := raw.Grant(ctx, int64(testTTL/time.Second))
	if err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithCancel(ctx)
	if _, err := raw.KeepAlive(kctx, lease.ID); err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, inst := range insts {
		if _, err := raw.Put(ctx, r.key(inst), mustRecord(t, inst), clientv3.WithLease(lease.ID)); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	return cancel
}

// restartWhileTheyLapse stops etcd until the instancer has noticed,
// calls gaveUp (the registrars' keepalives stop), starts etcd again and
// waits until key is gone: the restarted etcd expires the lease a TTL
// later.
func restartWhileTheyLapse(t *testing.T, srv *embedetcd.Server, in *Instancer, raw *clientv3.Client, gaveUp func(), key string) {
	t.Helper()
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the instancer to notice the outage", func() bool { return in.State().Err != nil })
	gaveUp()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the lapsed record to be deleted", func() bool {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := raw.Get(c, key)
		return err == nil && len(resp.Kvs) == 0
	})
}

// The hold of one outage must not stand in the way of the next one's
// (the Consul instancer's did: a hold emptied by the agent listing every
// instance again stayed until its window ended, and the next outage
// within that window published an empty set). Two outages within one
// window: after each, every record lapses; each time the instancer keeps
// the last set, and never publishes an empty one.
func TestInstancer_HoldsAgainInASecondOutageWithinTheWindow(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithReconnectHold(2*time.Minute))
	raw := rawClient(t, srv)
	a, b := testInstance(8080), testInstance(8081)
	stopAB := keptAlive(t, raw, r, a, b)
	in, err := r.NewInstancer(testCtx(t), "user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	waitFor(t, 10*time.Second, "set {a, b}", func() bool { return hasExactly(in, a, b) })
	rec := registrytest.Record(t, in)

	restartWhileTheyLapse(t, srv, in, raw, stopAB, r.key(a))
	waitFor(t, 20*time.Second, "the held set {a, b}", func() bool {
		ev := in.State()
		return errors.Is(ev.Err, ErrHeldAfterReconnect) && len(ev.Instances) == 2
	})
	stopA := keptAlive(t, raw, r, a) // a's registrar is back
	waitFor(t, 20*time.Second, "set {a} without error", func() bool { return hasExactly(in, a) })

	// The second outage, well within the first one's window.
	restartWhileTheyLapse(t, srv, in, raw, stopA, r.key(a))
	waitFor(t, 20*time.Second, "the held set {a}", func() bool {
		ev := in.State()
		return errors.Is(ev.Err, ErrHeldAfterReconnect) && len(ev.Instances) == 1
	})
	stopB := keptAlive(t, raw, r, b)
	defer stopB()
	waitFor(t, 20*time.Second, "set {b} without error", func() bool { return hasExactly(in, b) })
	if emptied(rec) {
		t.Fatalf("an empty set was published: %v", rec.Events())
	}
}
