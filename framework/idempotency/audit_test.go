package idempotency

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

// testWait bounds every wait of these tests: far beyond what they need,
// so a loaded machine only makes them slower.
const testWait = 30 * time.Second

// clock is a MemoryStore clock the test sets.
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

func startBlocked(ctx context.Context, s Store, ret error) *blocked {
	b := &blocked{started: make(chan struct{}), cue: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		_, b.err = Do(ctx, s, "Create", func(context.Context) (result, error) {
			close(b.started)
			<-b.cue
			return result{N: 1}, ret
		})
	}()
	return b
}

func waitFor(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(testWait):
		t.Fatalf("%s: not within %v", what, testWait)
	}
}

// An attempt that outlived its claim and then failed must not free the
// claim of the attempt that took it over: a third attempt while the
// second runs is told ErrInProgress, not run beside it. The clock is
// set between the first claim's expiry and the second's, so nothing here
// depends on how fast the machine is.
func TestDo_StaleFailureLeavesTheTakeoverClaimAlone(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	c := &clock{t: time.Now()}
	s.now = c.now
	ctx := NewContext(context.Background(), "k")
	boom := errors.New("boom")

	first := startBlocked(ctx, s, boom)
	t.Cleanup(func() { closeOnce(first.cue) })
	waitFor(t, "the first attempt's fn", first.started)
	claimedBy := time.Now() // the first claim's until is at most this + TTL
	time.Sleep(10 * time.Millisecond)
	c.set(claimedBy.Add(DefaultClaimTTL)) // past the first claim, before any later one

	second := startBlocked(ctx, s, nil)
	t.Cleanup(func() { closeOnce(second.cue) })
	waitFor(t, "the second attempt (the takeover)'s fn", second.started)

	close(first.cue) // the first attempt fails and releases its key
	waitFor(t, "the first attempt's answer", first.done)
	if !errors.Is(first.err, boom) {
		t.Fatalf("first attempt: %v, want boom", first.err)
	}

	runs := 0
	_, err := Do(ctx, s, "Create", func(context.Context) (result, error) { runs++; return result{N: 3}, nil })
	if !errors.Is(err, ErrInProgress) || runs != 0 {
		t.Fatalf("a third attempt while the second runs: err %v, %d runs; want ErrInProgress and no run", err, runs)
	}
	close(second.cue)
	waitFor(t, "the second attempt's answer", second.done)
	if second.err != nil {
		t.Fatalf("second attempt: %v", second.err)
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// ledger is an effect written the way the package asks: one entry per
// EffectKey, and a write that finds its key's entry answers it.
type ledger struct {
	mu      sync.Mutex
	byKey   map[string]string
	written int
}

func (l *ledger) add(email string) func(context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		k, _ := EffectKey(ctx)
		l.mu.Lock()
		defer l.mu.Unlock()
		if e, ok := l.byKey[k]; ok {
			return e, nil
		}
		l.byKey[k] = email
		l.written++
		return email, nil
	}
}

// A key reused with another request (Request) is refused while the first
// call holds it, and after that call's claim expired with its effect made
// (its instance stopped inside the handler): a takeover would run fn,
// which finds the first call's effect by its EffectKey and answers it to
// the other request. The first call, resumed, and its retries still get
// its own result.
func TestDo_KeyReusedWhileClaimedIsRefused(t *testing.T) {
	type req struct{ Email string }
	s := NewMemoryStore(time.Minute)
	c := &clock{t: time.Now()}
	s.now = c.now
	ctx := NewContext(context.Background(), "k")
	l := &ledger{byKey: map[string]string{}}

	stopped, resume, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { closeOnce(resume) })
	var first string
	var firstErr error
	go func() {
		defer close(done)
		first, firstErr = Do(ctx, s, "Create", func(ctx context.Context) (string, error) {
			e, err := l.add("a@x")(ctx)
			close(stopped) // the effect is made; the instance stops here
			<-resume
			return e, err
		}, Request(req{"a@x"}))
	}()
	waitFor(t, "the first call's effect", stopped)
	claimedBy := time.Now()
	if got, err := Do(ctx, s, "Create", l.add("b@x"), Request(req{"b@x"})); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("another request while the first call holds the key: %q, %v; want ErrKeyReused", got, err)
	}
	time.Sleep(10 * time.Millisecond)
	c.set(claimedBy.Add(DefaultClaimTTL)) // the first claim expired
	if got, err := Do(ctx, s, "Create", l.add("b@x"), Request(req{"b@x"})); !errors.Is(err, ErrKeyReused) {
		t.Fatalf("another request over the expired claim: %q, %v; want ErrKeyReused", got, err)
	}
	// The first call's own retry takes the expired claim over and answers
	// its effect.
	if got, err := Do(ctx, s, "Create", l.add("a@x"), Request(req{"a@x"})); err != nil || got != "a@x" {
		t.Fatalf("the first call's retry: %q, %v; want a@x", got, err)
	}
	close(resume)
	waitFor(t, "the resumed first call", done)
	if firstErr != nil || first != "a@x" || l.written != 1 {
		t.Fatalf("resumed first call: %q, %v, %d writes; want a@x, one write", first, firstErr, l.written)
	}
	if got, err := Do(ctx, s, "Create", l.add("a@x"), Request(req{"a@x"})); err != nil || got != "a@x" {
		t.Fatalf("a later retry: %q, %v; want a@x", got, err)
	}
}

// A panicking fn neither settles its key nor holds it forever: the key
// is in progress for the claim's TTL, like an instance stopped inside the
// handler, and then taken over.
func TestDo_PanicHoldsTheKeyForTheClaimTTLOnly(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	c := &clock{t: time.Now()}
	s.now = c.now
	ctx := NewContext(context.Background(), "k")
	func() {
		defer func() { _ = recover() }()
		_, _ = Do(ctx, s, "Create", func(context.Context) (result, error) { panic("handler bug") })
	}()
	runs := 0
	fn := func(context.Context) (result, error) { runs++; return result{N: runs}, nil }
	if _, err := Do(ctx, s, "Create", fn); !errors.Is(err, ErrInProgress) {
		t.Fatalf("right after the panic: %v, want ErrInProgress", err)
	}
	c.set(time.Now().Add(DefaultClaimTTL))
	if got, err := Do(ctx, s, "Create", fn); err != nil || got.N != 1 {
		t.Fatalf("after the claim's TTL: %+v, %v; want a run", got, err)
	}
}

// A nil result saved with its request's digest is answered as nil.
func TestDo_NilResultWithRequestIsReplayed(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	ctx := NewContext(context.Background(), "k")
	runs := 0
	fn := func(context.Context) (*result, error) { runs++; return nil, nil }
	for range 2 {
		if got, err := Do(ctx, s, "Create", fn, Request("r")); err != nil || got != nil {
			t.Fatalf("Do = %v, %v; want nil, nil", got, err)
		}
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times", runs)
	}
}

// A result JSON cannot encode (NaN) after fn made its effect: the call
// answers the effect instead of failing it (the caller would apply it
// again under a new key), and the key is not left in progress: the next
// attempt runs fn at once, which answers the effect by its EffectKey.
func TestDo_UnencodableResultAnswersTheEffectAndFreesTheKey(t *testing.T) {
	s := NewMemoryStore(time.Minute)
	c := &clock{t: time.Now()}
	s.now = c.now // frozen: a claim left behind would still hold
	ctx := NewContext(context.Background(), "k")
	effects := map[string]float64{}
	runs := 0
	fn := func(ctx context.Context) (float64, error) {
		runs++
		k, _ := EffectKey(ctx)
		if _, ok := effects[k]; !ok {
			effects[k] = math.NaN()
		}
		return effects[k], nil
	}
	for i := range 2 {
		got, err := Do(ctx, s, "Measure", fn)
		if err != nil || !math.IsNaN(got) {
			t.Fatalf("attempt %d: %v, %v; want the effect's NaN, no error", i+1, got, err)
		}
	}
	if runs != 2 || len(effects) != 1 {
		t.Fatalf("%d runs, %d effects; want fn run by each attempt (nothing saved) and one effect", runs, len(effects))
	}
}
