package etcdstore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// clock is a Store clock the test sets.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// blocked runs Do with an fn that reports it started and then waits for
// its cue to return ret.
type blocked struct {
	started, cue, done chan struct{}
	err                error
}

func startBlocked(ctx context.Context, s idempotency.Store, ret error) *blocked {
	b := &blocked{started: make(chan struct{}), cue: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		_, b.err = idempotency.Do(ctx, s, "op", func(context.Context) (int, error) {
			close(b.started)
			<-b.cue
			return 1, ret
		})
	}()
	return b
}

func waitFor(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(testDeadline):
		t.Fatalf("%s: not within %v", what, testDeadline)
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// Two attempts of one key on one instance share its Store: when the
// first outlived its claim, the second took it over, and then the first
// failed, the first's Release must not free the second's claim — an
// attempt on another instance while the second runs is told
// ErrInProgress, not run beside it. The clock is set between the two
// claims' expiries, so nothing depends on the machine's speed.
func TestDo_StaleReleaseOnTheSameInstanceLeavesTheTakeoverAlone(t *testing.T) {
	s, other := newStore(t), newStore(t)
	c := &clock{t: time.Now()}
	s.now, other.now = c.now, c.now
	ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
	boom := errors.New("boom")

	first := startBlocked(ctx, s, boom)
	t.Cleanup(func() { closeOnce(first.cue) })
	waitFor(t, "the first attempt's fn", first.started)
	claimedBy := time.Now()
	time.Sleep(10 * time.Millisecond)
	c.set(claimedBy.Add(idempotency.DefaultClaimTTL)) // past the first claim, before any later one

	second := startBlocked(ctx, s, nil)
	t.Cleanup(func() { closeOnce(second.cue) })
	waitFor(t, "the second attempt (the takeover)'s fn", second.started)

	close(first.cue)
	waitFor(t, "the first attempt's answer", first.done)
	if !errors.Is(first.err, boom) {
		t.Fatalf("first attempt: %v, want boom", first.err)
	}

	runs := 0
	_, err := idempotency.Do(ctx, other, "op", func(context.Context) (int, error) { runs++; return 3, nil })
	if !errors.Is(err, idempotency.ErrInProgress) || runs != 0 {
		t.Fatalf("an attempt on another instance while the second runs: err %v, %d runs; want ErrInProgress and no run", err, runs)
	}
	close(second.cue)
	waitFor(t, "the second attempt's answer", second.done)
	if second.err != nil {
		t.Fatalf("second attempt: %v", second.err)
	}
}

// A bucket's lease that etcd no longer has (revoked by hand, etcd's data
// restored) is replaced on the next write instead of failing every
// claim of the bucket.
func TestClaim_AfterTheBucketLeaseIsRevoked(t *testing.T) {
	cli := newClient(t)
	s, err := New(cli)
	if err != nil {
		t.Fatal(err)
	}
	k1 := "op/" + idempotency.NewKey()
	claim(t, s, k1, live())
	resp, err := cli.Get(testCtx(t), DefaultPrefix+k1)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get = %v, %v", resp, err)
	}
	if _, err := cli.Revoke(testCtx(t), clientv3LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	_, st := claim(t, s, "op/"+idempotency.NewKey(), live())
	wantState(t, "a new key after the revoke", st, idempotency.Claimed)
	_, st = claim(t, s, k1, live())
	wantState(t, "the revoked key again", st, idempotency.Claimed)
}

func clientv3LeaseID(id int64) clientv3.LeaseID { return clientv3.LeaseID(id) }

// A key reused with another request on another instance is refused
// (ErrKeyReused) while the first call holds it and after that call's
// claim expired with its effect made: a takeover would answer the first
// call's effect (found by EffectKey) to the other request, and save it
// under the other request's digest, so the first call's own retries were
// then refused. They get the first call's result.
func TestDo_KeyReusedOnAnotherInstanceIsRefused(t *testing.T) {
	type req struct{ Email string }
	first, other := newStore(t), newStore(t)
	c := &clock{t: time.Now()}
	first.now, other.now = c.now, c.now
	ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
	var (
		mu      sync.Mutex
		byKey   = map[string]string{}
		written int
	)
	add := func(email string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			k, _ := idempotency.EffectKey(ctx)
			mu.Lock()
			defer mu.Unlock()
			if e, ok := byKey[k]; ok {
				return e, nil
			}
			byKey[k] = email
			written++
			return email, nil
		}
	}

	stopped, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { closeOnce(resume) })
	go func() {
		defer close(done)
		_, _ = idempotency.Do(ctx, first, "op", func(ctx context.Context) (string, error) {
			e, err := add("a@x")(ctx)
			close(stopped) // the effect is made; the instance stops here
			<-resume
			return e, err
		}, idempotency.Request(req{"a@x"}))
	}()
	waitFor(t, "the first call's effect", stopped)
	claimedBy := time.Now()
	if got, err := idempotency.Do(ctx, other, "op", add("b@x"), idempotency.Request(req{"b@x"})); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("another request while the first call holds the key: %q, %v; want ErrKeyReused", got, err)
	}
	time.Sleep(10 * time.Millisecond)
	c.set(claimedBy.Add(idempotency.DefaultClaimTTL)) // the first claim expired
	if got, err := idempotency.Do(ctx, other, "op", add("b@x"), idempotency.Request(req{"b@x"})); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("another request over the expired claim: %q, %v; want ErrKeyReused", got, err)
	}
	close(resume) // the stopped instance resumes: its claim was not taken over
	waitFor(t, "the resumed first call", done)
	for _, s := range []*Store{other, first} {
		if got, err := idempotency.Do(ctx, s, "op", add("a@x"), idempotency.Request(req{"a@x"})); err != nil || got != "a@x" {
			t.Fatalf("the first call's retry: %q, %v; want a@x", got, err)
		}
	}
	if written != 1 {
		t.Fatalf("%d writes, want one", written)
	}
}

// The instance's etcd client closed while a keyed call runs (the process
// stopping): Complete cannot save the result, yet the call answers its
// effect; another instance's attempt is told in progress while the claim
// holds, then takes it over and answers the same effect, written once.
func TestDo_ClientClosedDuringTheCallLeavesTheKeyToTheTakeover(t *testing.T) {
	cli := newClient(t)
	closing, err := New(cli)
	if err != nil {
		t.Fatal(err)
	}
	other := newStore(t)
	c := &clock{t: time.Now()}
	other.now = c.now
	ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
	var (
		mu      sync.Mutex
		byKey   = map[string]string{}
		written int
	)
	add := func(name string) func(context.Context) (string, error) {
		return func(ctx context.Context) (string, error) {
			k, _ := idempotency.EffectKey(ctx)
			mu.Lock()
			defer mu.Unlock()
			if e, ok := byKey[k]; ok {
				return e, nil
			}
			byKey[k] = name
			written++
			return name, nil
		}
	}
	claimedBy := time.Now()
	got, err := idempotency.Do(ctx, closing, "op", func(ctx context.Context) (string, error) {
		e, err := add("first")(ctx)
		cli.Close()
		return e, err
	})
	if err != nil || got != "first" {
		t.Fatalf("the call whose client closed: %q, %v; want its effect", got, err)
	}
	if _, err := idempotency.Do(ctx, other, "op", add("retry")); !errors.Is(err, idempotency.ErrInProgress) {
		t.Fatalf("another instance while the claim holds: %v, want ErrInProgress", err)
	}
	c.set(claimedBy.Add(idempotency.DefaultClaimTTL + time.Minute)) // well past the claim
	if got, err := idempotency.Do(ctx, other, "op", add("retry")); err != nil || got != "first" || written != 1 {
		t.Fatalf("the takeover: %q, %v, %d writes; want first, one write", got, err, written)
	}
}
