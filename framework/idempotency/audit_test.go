package idempotency

import (
	"context"
	"errors"
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
