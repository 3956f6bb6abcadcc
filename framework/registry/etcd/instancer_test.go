package etcd

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
)

// putRecord writes inst's record directly, as another process would.
func putRecord(t *testing.T, cli *clientv3.Client, r *Registry, inst registry.Instance) {
	t.Helper()
	b, err := registry.EncodeRecord(inst)
	if err != nil {
		t.Fatal(err)
	}
	// Under a lease, as a registrar writes it: instancers skip records
	// without one.
	lease, err := cli.Grant(testCtx(t), 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(testCtx(t), r.key(inst), string(b), clientv3.WithLease(lease.ID)); err != nil {
		t.Fatal(err)
	}
}

func TestInstancer_SkipsGarbageValuesAndServesTheRest(t *testing.T) {
	prefix := testPrefix(t)
	r, logs := newTestRegistry(t, shared, prefix)
	raw := rawClient(t, shared)
	ctx := testCtx(t)
	good, later := testInstance(8080), testInstance(8081)
	putRecord(t, raw, r, good)
	svc := "/" + prefix + "/services/user/"
	for k, v := range map[string]string{
		svc + "garbage":      "\x00not json",
		svc + "old-version":  `{"v":99,"instance":{}}`,
		svc + "wrong-id":     mustRecord(t, testInstance(9999)), // record's ID differs from its key
		svc + "a/nested/key": mustRecord(t, testInstance(9998)),
	} {
		if _, err := raw.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}

	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	if !hasExactly(in, good) {
		t.Fatalf("initial set %v, want only %s", in.State(), good.ID)
	}
	// Garbage arriving through the watch is skipped as well, and garbage
	// written over a good record withdraws that record.
	if _, err := raw.Put(ctx, svc+"garbage-2", "{"); err != nil {
		t.Fatal(err)
	}
	putRecord(t, raw, r, later)
	waitFor(t, 2*time.Second, "later instance added", func() bool { return hasExactly(in, good, later) })
	if _, err := raw.Put(ctx, r.key(good), "[]"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "overwritten record dropped", func() bool { return hasExactly(in, later) })
	if !contains(logs.String(), "skipped records that are not usable instances", "skipped=4", "skipping record", "garbage-2") {
		t.Fatalf("expected warnings in log:\n%s", logs)
	}
}

func mustRecord(t *testing.T, inst registry.Instance) string {
	b, err := registry.EncodeRecord(inst)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestInstancer_ResyncsAfterCompactionWithoutMissingChanges(t *testing.T) {
	prefix := testPrefix(t)
	raw := rawClient(t, shared)
	ctx := testCtx(t)
	a, b, c := testInstance(8080), testInstance(8081), testInstance(8082)

	// Hold the instancer between its first listing and its first watch, so
	// the changes below happen "while it is disconnected" and the history
	// it would resume from is compacted away.
	release := make(chan struct{})
	var once sync.Once
	hook := func() { once.Do(func() { <-release }) }
	r, logs := newTestRegistry(t, shared, prefix, withHookBeforeWatch(hook))
	putRecord(t, raw, r, a)
	putRecord(t, raw, r, b)
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		close(release)
		t.Fatal(err)
	}
	if !hasExactly(in, a, b) {
		close(release)
		t.Fatalf("initial set %v", in.State())
	}

	if _, err := raw.Delete(ctx, r.key(a)); err != nil {
		t.Fatal(err)
	}
	putRecord(t, raw, r, c)
	b2 := b
	b2.Version = "2"
	putRecord(t, raw, r, b2)
	resp, err := raw.Get(ctx, "anything")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	close(release)

	waitFor(t, 3*time.Second, "set re-synced to {b2, c}", func() bool {
		if !hasExactly(in, b, c) {
			return false
		}
		for _, s := range in.State().Instances {
			if got, _ := registry.ParseInstance(s); got.ID == b.ID && got.Version != "2" {
				return false
			}
		}
		return true
	})
	if !contains(logs.String(), "compacted") {
		t.Fatalf("expected the compaction to be logged:\n%s", logs)
	}

	// And the watch after the re-sync is live.
	if _, err := raw.Delete(ctx, r.key(c)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "delete after re-sync seen", func() bool { return hasExactly(in, b) })
}

func TestInstancer_ReturnsWithinDeadlineWhileEtcdDownAndFillsWhenItComesUp(t *testing.T) {
	srv, err := embedetcd.New()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	prefix := testPrefix(t)
	r, _ := newTestRegistry(t, srv, prefix, WithInitialWait(5*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()

	start := time.Now()
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Fatalf("constructor took %s with a 500ms deadline", d)
	}
	if ev := in.State(); ev.Err == nil || len(ev.Instances) != 0 {
		t.Fatalf("state while etcd down = %+v, want empty set with error", ev)
	}
	// A subscriber registered now gets the error state at once.
	ch := make(chan sd.Event, 1)
	in.Register(ch)
	if ev := <-ch; ev.Err == nil {
		t.Fatalf("first event %+v, want error", ev)
	}
	in.Deregister(ch)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	inst := testInstance(8080)
	other, _ := newTestRegistry(t, srv, prefix)
	if err := other.Register(testCtx(t), inst); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 5*time.Second, "set filled", func() bool { return hasExactly(in, inst) })
	t.Logf("set filled %s after the instance was registered", took)
}

func TestInstancer_StopIsIdempotentAndEndsItsGoroutines(t *testing.T) {
	r, _ := newTestRegistry(t, shared, testPrefix(t))
	in, err := r.NewInstancer(testCtx(t), "user")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); in.Stop() }()
	}
	wg.Wait()
	in.Stop()
	select {
	case <-in.done:
	default:
		t.Fatal("run loop still going after Stop")
	}
	r.mu.Lock()
	n := len(r.instancers)
	r.mu.Unlock()
	if n != 0 {
		t.Fatalf("registry still tracks %d instancers", n)
	}
}

func TestInstancer_RejectsInvalidServiceName(t *testing.T) {
	r, _ := newTestRegistry(t, shared, testPrefix(t))
	if _, err := r.Instancer(testCtx(t), "Not Valid"); err == nil {
		t.Fatal("want error")
	}
}

func TestInstancer_DoesNotSeeServicesSharingANamePrefix(t *testing.T) {
	prefix := testPrefix(t)
	r, _ := newTestRegistry(t, shared, prefix)
	raw := rawClient(t, shared)
	user, admin := testInstance(8080), testInstance(8081)
	admin.Name, admin.ID = "user-admin", "user-admin-1"
	putRecord(t, raw, r, user)
	putRecord(t, raw, r, admin)
	in, err := r.NewInstancer(testCtx(t), "user")
	if err != nil {
		t.Fatal(err)
	}
	if !hasExactly(in, user) {
		t.Fatalf("set %v", in.State())
	}
}

func TestInstancer_ResyncsWhenEtcdComesBackWithOlderRevision(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	prefix := testPrefix(t)
	r, logs := newTestRegistry(t, srv, prefix)
	reg, _ := newTestRegistry(t, srv, prefix)
	raw := rawClient(t, srv)
	ctx := testCtx(t)
	gone, kept := testInstance(8080), testInstance(8081)
	// Push the revision well past what the new store will reach.
	for range 20 {
		putRecord(t, raw, r, gone)
	}
	if err := reg.Register(ctx, kept); err != nil {
		t.Fatal(err)
	}
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	if !hasExactly(in, gone, kept) {
		t.Fatalf("initial set %v", in.State())
	}

	// Same endpoints, same cluster ID, but an empty store at revision 1: what
	// a restore from an old snapshot looks like to a client. A watch resumed
	// at our old revision would wait there silently.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(srv.Dir()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// The registrar restores its own record (its lease is unknown to the
	// new store); the other record is gone for good.
	waitFor(t, testTTL+3*time.Second, "set is {kept} again", func() bool { return hasExactly(in, kept) })
	later := testInstance(8082)
	putRecord(t, raw, r, later)
	waitFor(t, 2*time.Second, "change after the restore seen", func() bool { return hasExactly(in, kept, later) })
	if !contains(logs.String(), "revision went backwards") {
		t.Fatalf("expected the lower revision to be noticed:\n%s", logs)
	}
}
