package retry

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// learn feeds the latency histogram n attempts of d straight, so the hedge
// delay is known without running (and maybe hedging) calls.
func learn(p *Policy, c *fakeClock, n int, d time.Duration) {
	for range n {
		p.adaptive.observe(d)
	}
	c.advance(adaptiveRefresh)
}

// hedgingPolicy hedges after ~1 ms of real time and never cuts an attempt
// by its own deadline, so only a hedge can end a hung first attempt.
func hedgingPolicy(c *fakeClock, opts ...Option) *Policy {
	p := adaptivePolicy(c, append([]Option{WithHedging(time.Millisecond), WithPerAttemptTimeout(time.Hour)}, opts...)...)
	learn(p, c, 50, time.Millisecond)
	return p
}

func TestDo_HedgeAnswersForAHungAttemptAndCancelsItAsOutpaced(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	var cause error
	var calls atomic.Int32
	err := p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		calls.Add(1)
		if n == 1 { // hung: returns only when cancelled
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do = %v, want the hedge's success", err)
	}
	if !errors.Is(cause, ErrOutpaced) {
		t.Errorf("the hung attempt ended with cause %v, want ErrOutpaced", cause)
	}
	if calls.Load() != 2 || p.Hedges() != 1 {
		t.Errorf("%d attempts, %d hedges; want 2 and 1", calls.Load(), p.Hedges())
	}
}

func TestDo_HedgeCancelledAsUnneededWhenTheFirstAttemptAnswers(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	hedgeStarted := make(chan struct{})
	var hedgeCause error
	var hedgeReturned atomic.Bool
	err := p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		if n == 1 {
			select { // answer once the hedge is out
			case <-hedgeStarted:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		close(hedgeStarted)
		<-ctx.Done()
		hedgeCause = context.Cause(ctx)
		hedgeReturned.Store(true)
		return ctx.Err()
	})
	if err != nil {
		t.Fatalf("Do = %v, want the first attempt's success", err)
	}
	if !hedgeReturned.Load() {
		t.Fatal("Do returned before the hedge it cancelled")
	}
	if !errors.Is(hedgeCause, ErrHedgeUnneeded) {
		t.Errorf("the hedge ended with cause %v, want ErrHedgeUnneeded", hedgeCause)
	}
}

// An answer (a Fatal failure) of the first attempt is the call's outcome:
// the hedge is cancelled, not waited out.
func TestDo_FirstAttemptsAnswerDecidesAHedgedCall(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	hedgeStarted := make(chan struct{})
	notFound := classed{Fatal}
	err := p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		if n == 1 {
			<-hedgeStarted
			return notFound
		}
		close(hedgeStarted)
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, notFound) {
		t.Fatalf("Do = %v, want the first attempt's answer", err)
	}
}

// A hedge spends a retry token; with none left the attempt is not hedged
// (and its deadline, then the budget, decide).
func TestDo_HedgeSpendsTheRetryBudget(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	b := NewBudget(0, 1) // one token, never refilled
	p := adaptivePolicy(c, WithHedging(time.Millisecond), WithPerAttemptTimeout(200*time.Millisecond), WithBudget(b))
	learn(p, c, 50, time.Millisecond)
	var causes []error
	call := func() error {
		return p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
			if n == 1 {
				<-ctx.Done()
				causes = append(causes, context.Cause(ctx))
				return ctx.Err()
			}
			return nil
		})
	}
	if err := call(); err != nil {
		t.Fatalf("first call: %v, want the hedge's success", err)
	}
	if err := call(); !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("second call: %v, want ErrBudgetExhausted (no token to hedge or retry)", err)
	}
	if p.Hedges() != 1 || len(causes) != 2 || !errors.Is(causes[0], ErrOutpaced) || !errors.Is(causes[1], context.DeadlineExceeded) {
		t.Fatalf("hedges %d, first attempts' causes %v; want 1 hedge, then [outpaced, deadline]", p.Hedges(), causes)
	}
	if retries, refused := b.Stats(); retries != 1 || refused != 1 {
		t.Errorf("budget stats %d retries, %d refused; want 1 (the hedge) and 1 (the second call's retry)", retries, refused)
	}
}

// doPanicking runs p.Do and returns the value it panicked with (nil if it
// returned).
func doPanicking(ctx context.Context, p *Policy, attempt func(context.Context, int) error) (v any) {
	defer func() { v = recover() }()
	_ = p.Do(ctx, true, attempt)
	return nil
}

// A panic in a hedge (a user's encoder, decoder or RoundTripper wrapper)
// runs on the hedge timer's goroutine, where nothing would recover it and
// the process would end. It comes out of Do on the caller's goroutine
// instead, as the same panic in the first attempt does, and the first
// attempt, whose outcome no longer matters, is cancelled as unneeded.
func TestDo_PanicInAHedgeComesOutOfDo(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	var cause error
	v := doPanicking(testCtx(t), p, func(ctx context.Context, n int) error {
		if n == 1 { // hung: returns only when cancelled
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}
		panic("decoder bug")
	})
	if v != "decoder bug" {
		t.Fatalf("Do panicked with %v, want the hedge's panic", v)
	}
	if !errors.Is(cause, ErrHedgeUnneeded) {
		t.Errorf("the first attempt ended with cause %v, want ErrHedgeUnneeded", cause)
	}
}

// A panic in the first attempt while its hedge is out comes out of Do
// once the hedge has been called off and has returned: no attempt of the
// call outlives it.
func TestDo_PanicInTheFirstAttemptCallsOffItsHedge(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	hedgeStarted := make(chan struct{})
	var hedgeReturned atomic.Bool
	var hedgeCause error
	v := doPanicking(testCtx(t), p, func(ctx context.Context, n int) error {
		if n == 1 {
			<-hedgeStarted
			panic("encoder bug")
		}
		close(hedgeStarted)
		<-ctx.Done()
		hedgeCause = context.Cause(ctx)
		hedgeReturned.Store(true)
		return ctx.Err()
	})
	if v != "encoder bug" {
		t.Fatalf("Do panicked with %v, want the first attempt's panic", v)
	}
	if !hedgeReturned.Load() {
		t.Fatal("Do panicked before the hedge returned")
	}
	if !errors.Is(hedgeCause, ErrHedgeUnneeded) {
		t.Errorf("the hedge ended with cause %v, want ErrHedgeUnneeded", hedgeCause)
	}
}

// A call that is not idempotent is never hedged: its second application
// could do harm.
func TestDo_NonIdempotentCallIsNotHedged(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	var calls atomic.Int32
	_ = p.Do(ctx, false, func(ctx context.Context, n int) error {
		calls.Add(1)
		<-ctx.Done()
		return ctx.Err()
	})
	if calls.Load() != 1 || p.Hedges() != 0 {
		t.Fatalf("%d attempts, %d hedges; want 1 and 0", calls.Load(), p.Hedges())
	}
}

func TestDo_NoHedgeBeforeLatencyIsKnownOrWhenTurnedOff(t *testing.T) {
	for name, p := range map[string]*Policy{
		"no samples": adaptivePolicy(&fakeClock{t: time.Unix(1000, 0)}, WithHedging(time.Millisecond), WithPerAttemptTimeout(time.Hour)),
		"off":        hedgingPolicy(&fakeClock{t: time.Unix(1000, 0)}, WithoutHedging()),
	} {
		if hd := p.hedgeDelay(1, true); hd != 0 {
			t.Errorf("%s: hedge delay %s, want none", name, hd)
		}
	}
	if hd := hedgingPolicy(&fakeClock{t: time.Unix(1000, 0)}).hedgeDelay(1, true); hd <= 0 {
		t.Errorf("with 50 samples: no hedge delay")
	}
}

// Hedges stop at half the burst; retries may spend the last token, and
// below the reserve every deposit goes to them.
func TestBudget_HedgesLeaveHalfTheBurstToRetries(t *testing.T) {
	b := NewBudget(0.2, 10)
	hedges := 0
	for b.withdrawHedge() {
		hedges++
	}
	retries := 0
	for b.Withdraw() {
		retries++
	}
	if hedges != 5 || retries != 5 {
		t.Fatalf("spent %d tokens on hedges and %d on retries; want 5 and 5", hedges, retries)
	}
	if granted, refused := b.Stats(); granted != 10 || refused != 1 {
		t.Errorf("stats: %d granted, %d retries refused; want 10 and 1", granted, refused)
	}
	// Six requests refill 1.2 tokens: a retry may spend one, a hedge may
	// not (it would leave less than 5).
	for range 6 {
		b.Deposit()
	}
	if b.withdrawHedge() {
		t.Error("a hedge was paid below the reserve")
	}
	if !b.Withdraw() {
		t.Error("a retry found no token after six deposits")
	}
}

// A stall that makes every attempt slow hedges the calls until the budget
// is down to its hedge reserve; the retry a fault needs next is still paid.
func TestDo_HedgesDrainedToTheReserveStillLeaveARetry(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	b := NewBudget(0, 10) // never refilled: only the reserve is left for the retry
	p := hedgingPolicy(c, WithBudget(b))
	stalled := func(ctx context.Context, n int) error {
		if n == 1 { // slow until its hedge answers
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	for i := range 5 {
		if err := p.Do(testCtx(t), true, stalled); err != nil {
			t.Fatalf("stalled call %d: %v, want its hedge's success", i+1, err)
		}
	}
	if p.Hedges() != 5 {
		t.Fatalf("%d hedges for 5 stalled calls, want 5", p.Hedges())
	}
	// The next slow attempt is not hedged (the budget is at its reserve);
	// it then fails in a way a retry fixes, and the retry is paid.
	var attempts atomic.Int32
	err := p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		attempts.Add(1)
		if n > 1 {
			return nil
		}
		for p.HedgesRefused() == 0 { // until the hedge timer has been refused
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		return classed{MaybeProcessed} // a reset, say
	})
	if err != nil {
		t.Fatalf("call after the stall: %v, want its retry's success", err)
	}
	if p.Hedges() != 5 || p.HedgesRefused() != 1 || attempts.Load() != 2 {
		t.Errorf("%d hedges, %d refused, %d attempts; want 5, 1 and 2 (the attempt and its retry)", p.Hedges(), p.HedgesRefused(), attempts.Load())
	}
	if retries, refused := b.Stats(); retries != 6 || refused != 0 {
		t.Errorf("budget granted %d, refused %d retries; want 6 (5 hedges, 1 retry) and 0", retries, refused)
	}
}

// needlessOrWinning runs one hedged call whose first attempt is slow
// until the hedge is due: with needless, it then answers before the hedge
// (which is cancelled as unneeded); otherwise the hedge answers and the
// first attempt is outpaced. A hedge the policy refuses leaves the first
// attempt to answer. It reports whether a hedge was sent.
func needlessOrWinning(t *testing.T, p *Policy, needless bool) bool {
	t.Helper()
	hedges, refused := p.Hedges(), p.HedgesRefused()
	hedgeStarted := make(chan struct{})
	err := p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		if n > 1 { // the hedge
			close(hedgeStarted)
			if needless {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}
		for p.HedgesRefused() == refused { // until the hedge is sent or refused
			select {
			case <-hedgeStarted:
				if needless {
					return nil
				}
				<-ctx.Done() // outpaced
				return ctx.Err()
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("hedged call: %v", err)
	}
	return p.Hedges() > hedges
}

// During a machine-wide stall every attempt is slow and the first one
// answers before its hedge: needless hedges are capped at 5 % of requests
// plus a burst of 10, while hedges that win are not held back.
func TestDo_NeedlessHedgesAreCappedAndWinningOnesAreNot(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c) // no retry budget: only the needless cap limits
	sent := 0
	for range 30 {
		if needlessOrWinning(t, p, true) {
			sent++
		}
	}
	// 10 from the burst; 29 requests deposit 0.05 each after it: one more.
	if sent != 11 || p.HedgesRefused() != 19 {
		t.Fatalf("30 calls with needless hedges: %d hedges sent, %d refused; want 11 and 19", sent, p.HedgesRefused())
	}
	// Once one more hedge is allowed and wins, each winning hedge gives
	// its allowance back: an instance that hangs after a stall is hedged
	// on every call again.
	for range 20 {
		needlessOrWinning(t, p, false)
	}
	before := p.Hedges()
	for i := range 30 {
		if !needlessOrWinning(t, p, false) {
			t.Fatalf("winning call %d after recovery was not hedged", i+1)
		}
	}
	if p.Hedges()-before != 30 {
		t.Errorf("%d hedges for 30 calls whose hedges win, want 30", p.Hedges()-before)
	}
}

// countingCtx counts the contexts hung off it. Its Done is a channel of
// its own, so the context package does not take it for one of its own
// cancelCtxs and registers children through AfterFunc, which counts.
type countingCtx struct {
	context.Context
	done       chan struct{}
	registered atomic.Int32
}

func newCountingCtx(parent context.Context) *countingCtx {
	c := &countingCtx{Context: parent, done: make(chan struct{})}
	context.AfterFunc(parent, func() { close(c.done) })
	return c
}

func (c *countingCtx) Done() <-chan struct{} { return c.done }

func (c *countingCtx) AfterFunc(f func()) func() bool {
	c.registered.Add(1)
	return context.AfterFunc(c.Context, f)
}

// An idempotent call that answers before its hedge is due hangs one
// context off the caller's — its attempt's, which a winning hedge would
// cancel — and none for the hedge, whose context is made only when its
// timer fires: each one made would lock the caller's context to hang it
// there and again to take it off, on nearly every call for nothing.
func TestDo_HedgeContextIsMadeOnlyWhenItsTimerFires(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	// Hedging armed an hour in; the attempt's own deadline (2 h) is later
	// than the caller's (10 s), so the attempt runs in the context the
	// hedge would cancel, with no deadline context of its own.
	p := adaptivePolicy(c, WithHedging(time.Hour), WithPerAttemptTimeout(2*time.Hour))
	learn(p, c, 50, time.Millisecond)
	if hd := p.hedgeDelay(1, true); hd != time.Hour {
		t.Fatalf("hedge delay %s, want 1h: the call would not be hedged", hd)
	}
	ctx := newCountingCtx(testCtx(t))
	if err := p.Do(ctx, true, func(context.Context, int) error { return nil }); err != nil {
		t.Fatalf("Do = %v", err)
	}
	if got := ctx.registered.Load(); got != 1 {
		t.Errorf("%d contexts hung off the caller's, want 1 (the attempt's; none for a hedge not sent)", got)
	}
	if p.Hedges() != 0 {
		t.Errorf("%d hedges sent, want 0", p.Hedges())
	}
}

// On defaults a hedge waits at least DefaultHedgeFloor (10 ms) however
// fast the service, and the last attempt is never hedged.
func TestHedgeDelay_FloorAndNoHedgeForTheLastAttempt(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := adaptivePolicy(c, WithMaxAttempts(3))
	learn(p, c, 50, 100*time.Microsecond)
	if hd := p.hedgeDelay(1, true); hd != 10*time.Millisecond {
		t.Fatalf("hedge delay %s after 100µs attempts, want the 10ms floor", hd)
	}
	if hd := p.hedgeDelay(2, true); hd <= 0 {
		t.Fatalf("attempt 2 of 3: no hedge delay, want one")
	}
	if hd := p.hedgeDelay(3, true); hd != 0 {
		t.Fatalf("last attempt: hedge delay %s, want none", hd)
	}
}
