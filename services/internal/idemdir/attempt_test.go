package idemdir

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// clock is the stores' shared time, moved by the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// twoInstances opens two stores on one directory, as two instances of a
// demo service share theirs, on one clock.
func twoInstances(t *testing.T) (a, b *Store, c *clock) {
	t.Helper()
	dir := t.TempDir()
	c = &clock{t: time.Now()}
	a, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a.now, b.now = c.now, c.now
	return a, b, c
}

// blocked runs Do on s with fn held until cue is closed; it returns
// fn's start, and Do's end with its error.
func blocked(ctx context.Context, s *Store, fail error, opts ...idempotency.Option) (started, cue, done chan struct{}, err *error) {
	started, cue, done = make(chan struct{}), make(chan struct{}), make(chan struct{})
	err = new(error)
	go func() {
		defer close(done)
		_, *err = idempotency.Do(ctx, s, "Create", func(context.Context) (int, error) {
			close(started)
			<-cue
			return 1, fail
		}, opts...)
	}()
	return started, cue, done, err
}

func await(t *testing.T, what string, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not within 30 s", what)
	}
}

// An attempt that outlived its claim and then failed frees only its own
// claim: the one of the attempt that took the key over (on the other
// instance) stays, so a third attempt is told the call is in progress
// instead of running the handler beside the second.
func TestDo_AStaleFailureLeavesTheTakeoverClaimAlone(t *testing.T) {
	a, b, c := twoInstances(t)
	ctx := idempotency.NewContext(context.Background(), "k")
	boom := errors.New("boom")
	firstStarted, firstCue, firstDone, firstErr := blocked(ctx, a, boom)
	defer func() {
		select {
		case <-firstCue:
		default:
			close(firstCue)
		}
	}()
	await(t, "the first attempt's handler", firstStarted)
	claimedBy := time.Now() // the first claim's until is at most this + TTL
	time.Sleep(10 * time.Millisecond)
	c.set(claimedBy.Add(idempotency.DefaultClaimTTL)) // past the first claim, before any later one

	secondStarted, secondCue, secondDone, secondErr := blocked(ctx, b, nil)
	defer func() {
		select {
		case <-secondCue:
		default:
			close(secondCue)
		}
	}()
	await(t, "the takeover's handler", secondStarted)
	close(firstCue)
	await(t, "the first attempt's end", firstDone)
	if !errors.Is(*firstErr, boom) {
		t.Fatalf("first attempt: %v, want boom", *firstErr)
	}
	runs := 0
	_, err := idempotency.Do(ctx, a, "Create", func(context.Context) (int, error) { runs++; return 3, nil })
	if !errors.Is(err, idempotency.ErrInProgress) || runs != 0 {
		t.Fatalf("a third attempt while the takeover runs: %v, %d runs; want ErrInProgress and no run", err, runs)
	}
	close(secondCue)
	await(t, "the takeover's end", secondDone)
	if *secondErr != nil {
		t.Fatalf("the takeover: %v", *secondErr)
	}
}

// A key sent again with another request is refused (ErrKeyReused) while
// the first call holds it and once its claim expired (its instance
// stopped inside the handler): taking the expired claim over would run
// the handler, which finds the first call's effect and answers it to the
// other request.
func TestDo_AKeyReusedWithAnotherRequestIsRefusedWhileClaimed(t *testing.T) {
	a, b, c := twoInstances(t)
	ctx := idempotency.NewContext(context.Background(), "k")
	started, cue, done, firstErr := blocked(ctx, a, nil, idempotency.Request("a@x"))
	defer func() {
		select {
		case <-cue:
		default:
			close(cue)
		}
	}()
	await(t, "the first call's handler", started)
	claimedBy := time.Now()
	other := func(context.Context) (int, error) { return 2, nil }
	if _, err := idempotency.Do(ctx, b, "Create", other, idempotency.Request("b@x")); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("another request while the first call holds the key: %v, want ErrKeyReused", err)
	}
	time.Sleep(10 * time.Millisecond)
	c.set(claimedBy.Add(idempotency.DefaultClaimTTL)) // the first claim expired
	if _, err := idempotency.Do(ctx, b, "Create", other, idempotency.Request("b@x")); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("another request over the expired claim: %v, want ErrKeyReused", err)
	}
	close(cue)
	await(t, "the first call's end", done)
	if *firstErr != nil {
		t.Fatalf("the first call: %v", *firstErr)
	}
}
