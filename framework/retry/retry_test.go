package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

type classed struct{ c Class }

func (e classed) Error() string     { return "classed " + e.c.String() }
func (e classed) RetryClass() Class { return e.c }

func fast(opts ...Option) *Policy {
	return must(New(append([]Option{WithBackoff(time.Microsecond, time.Microsecond), WithBudget(nil)}, opts...)...))
}

func TestDo_RetriesByClassAndIdempotency(t *testing.T) {
	cases := []struct {
		name       string
		class      Class
		idempotent bool
		attempts   int
	}{
		{"unprocessed, not idempotent", Unprocessed, false, 3},
		{"maybe-processed, idempotent", MaybeProcessed, true, 3},
		{"maybe-processed, not idempotent", MaybeProcessed, false, 1},
		{"fatal, idempotent", Fatal, true, 1},
	}
	for _, tc := range cases {
		n := 0
		err := fast().Do(context.Background(), tc.idempotent, func(context.Context, int) error {
			n++
			return classed{tc.class}
		})
		if n != tc.attempts || err == nil {
			t.Errorf("%s: %d attempts (err %v), want %d", tc.name, n, err, tc.attempts)
		}
	}
}

func TestDo_ReturnsAtFirstSuccess(t *testing.T) {
	n := 0
	err := fast(WithMaxAttempts(5)).Do(context.Background(), true, func(_ context.Context, i int) error {
		n++
		if i < 3 {
			return classed{Unprocessed}
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Fatalf("err %v after %d attempts", err, n)
	}
}

func TestDo_FinalErrorWrapsEveryAttempt(t *testing.T) {
	errs := []error{errors.New("first"), errors.New("second"), errors.New("third")}
	err := fast(WithClassifier(func(error) Class { return Unprocessed })).Do(context.Background(), false,
		func(_ context.Context, n int) error { return fmt.Errorf("attempt: %w", errs[n-1]) })
	var re *Error
	if !errors.As(err, &re) || len(re.Attempts) != 3 {
		t.Fatalf("err = %v, want *Error with 3 attempts", err)
	}
	for _, e := range errs {
		if !errors.Is(err, e) {
			t.Errorf("errors.Is(err, %v) = false", e)
		}
	}
}

func TestDo_SingleAttemptErrorIsReturnedAsIs(t *testing.T) {
	want := classed{Fatal}
	err := fast().Do(context.Background(), true, func(context.Context, int) error { return want })
	if err != error(want) {
		t.Fatalf("err = %#v", err)
	}
}

// testCtx bounds calls whose mechanism under test is a timeout, so a
// broken one fails the test instead of hanging it.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDo_PerAttemptTimeoutAbandonsHungAttemptAndRetries(t *testing.T) {
	attempts := 0
	err := fast(WithPerAttemptTimeout(20*time.Millisecond)).Do(testCtx(t), true, func(ctx context.Context, n int) error {
		attempts++
		if n == 1 {
			<-ctx.Done() // hung instance
			return ctx.Err()
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err = %v after %d attempts; want the hung one abandoned and the second to succeed", err, attempts)
	}
}

func TestDo_PerAttemptTimeoutErrorMatchesErrAttemptTimeout(t *testing.T) {
	err := fast(WithPerAttemptTimeout(time.Millisecond), WithMaxAttempts(2)).Do(testCtx(t), true, func(ctx context.Context, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v; want ErrAttemptTimeout wrapping the call's error", err)
	}
}

func TestDo_CallerDeadlineIsNotRetried(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	n := 0
	err := fast(WithPerAttemptTimeout(time.Second)).Do(ctx, true, func(ctx context.Context, _ int) error {
		n++
		<-ctx.Done()
		return ctx.Err()
	})
	if n != 1 || errors.Is(err, ErrAttemptTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%d attempts, err %v", n, err)
	}
}

// When the caller's deadline comes no later than the attempt's own, the
// attempt runs in the caller's context itself — no context, timer and
// child map of its own per attempt — and an attempt whose own deadline
// comes first still gets a context that ends then.
func TestDo_AttemptRunsInCallerContextWhenItsDeadlineComesFirst(t *testing.T) {
	caller, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	callerDL, _ := caller.Deadline()
	var got context.Context
	if err := fast(WithPerAttemptTimeout(time.Minute)).Do(caller, true, func(ctx context.Context, _ int) error {
		got = ctx
		return nil
	}); err != nil || got != caller {
		t.Fatalf("attempt ran in %v (err %v); want the caller's context, whose deadline comes first", got, err)
	}
	if err := fast(WithPerAttemptTimeout(time.Second)).Do(caller, true, func(ctx context.Context, _ int) error {
		got = ctx
		return nil
	}); err != nil || got == caller {
		t.Fatalf("attempt ran in the caller's context (err %v); want its own, ending first", err)
	}
	if dl, ok := got.Deadline(); !ok || !dl.Before(callerDL) {
		t.Fatalf("attempt deadline %v, %v; want before the caller's %v", dl, ok, callerDL)
	}
}

// pastDeadline is a context whose deadline has passed but that is not
// (yet) done: the moment between a deadline and its timer firing, held.
type pastDeadline struct{ context.Context }

func (pastDeadline) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

// An attempt that fails once the caller's deadline, which came before its
// own, has passed timed out, though the caller's context does not say so
// yet: as when the attempt had a context of its own, whose deadline was
// the caller's.
func TestDo_AttemptPastTheCallersDeadlineTimedOut(t *testing.T) {
	ctx := pastDeadline{context.Background()}
	err := fast(WithPerAttemptTimeout(time.Minute)).Do(ctx, true, func(context.Context, int) error {
		return classed{Fatal}
	})
	if !errors.Is(err, ErrAttemptTimeout) {
		t.Fatalf("err = %v; want the attempt timed out", err)
	}
}

func TestDo_GivesUpWhenBackoffWouldOutliveTheDeadline(t *testing.T) {
	// Sleeping into the deadline would take 10 s; giving up takes none of
	// it. The margin between the two is wide enough for a starved machine.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := must(New(WithBackoff(time.Minute, time.Minute), WithBudget(nil))).Do(ctx, true, func(context.Context, int) error {
		return classed{Unprocessed}
	})
	var re *Error
	if !errors.As(err, &re) || !errors.Is(re.Stopped, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("slept into the deadline: %s", time.Since(start))
	}
}

func TestBackoff_GrowsExponentiallyWithJitterUpToCap(t *testing.T) {
	p := must(New(WithBackoff(10*time.Millisecond, 80*time.Millisecond)))
	for n, hi := range map[int]time.Duration{1: 10, 2: 20, 3: 40, 4: 80, 5: 80, 40: 80} {
		hi *= time.Millisecond
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.backoff(n)
			if d < hi/2 || d > hi {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", n, d, hi/2, hi)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) has %d distinct values: no jitter", n, len(seen))
		}
	}
}

func TestBudget_CapsRetriesAtRatioOfRequestsPlusBurst(t *testing.T) {
	b := NewBudget(0.2, 5)
	p := must(New(WithBackoff(time.Microsecond, time.Microsecond), WithBudget(b), WithMaxAttempts(3)))
	const requests = 500
	var mu sync.Mutex
	attempts := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range requests / 4 {
				_ = p.Do(context.Background(), true, func(context.Context, int) error {
					mu.Lock()
					attempts++
					mu.Unlock()
					return classed{Unprocessed}
				})
			}
		})
	}
	wg.Wait()
	retries := attempts - requests
	limit := requests/5 + 5
	granted, refused := b.Stats()
	t.Logf("%d requests, %d retries (limit %d), budget granted %d refused %d", requests, retries, limit, granted, refused)
	if retries > limit || retries < limit-2 || int64(retries) != granted {
		t.Fatalf("retries = %d, want ≤ %d and close to it (granted %d)", retries, limit, granted)
	}
}

func TestClassify_NetworkFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, refused := http.Get("http://" + addr + "/")
	// A dialer's own timeout: Is context.DeadlineExceeded, but the
	// caller's context is alive and nothing was sent.
	_, dialTimeout := (&http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Nanosecond}).DialContext}}).Get("http://" + addr + "/")
	if !errors.Is(dialTimeout, context.DeadlineExceeded) {
		t.Fatalf("a dial timeout is %v, want it to be context.DeadlineExceeded (what the case is about)", dialTimeout)
	}
	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"refused (real dial)", refused, Unprocessed},
		{"dial timeout (real dial)", dialTimeout, Unprocessed},
		{"reset", &net.OpError{Op: "read", Err: syscall.ECONNRESET}, MaybeProcessed},
		{"eof", fmt.Errorf("x: %w", io.EOF), MaybeProcessed},
		{"attempt timeout", &timeoutError{err: context.DeadlineExceeded}, MaybeProcessed},
		{"caller deadline", context.DeadlineExceeded, Fatal},
		{"caller cancel", fmt.Errorf("x: %w", context.Canceled), Fatal},
		{"other", errors.New("boom"), Fatal},
		{"own class wins", fmt.Errorf("wrapped: %w", classed{Unprocessed}), Unprocessed},
	}
	for _, tc := range cases {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("%s: Classify(%v) = %s, want %s", tc.name, tc.err, got, tc.want)
		}
	}
}

type delayed struct{ d time.Duration }

func (e delayed) Error() string             { return "slow down" }
func (e delayed) RetryClass() Class         { return Unprocessed }
func (e delayed) RetryDelay() time.Duration { return e.d }

func TestDo_WaitsAtLeastTheServerNamedDelay(t *testing.T) {
	const wait = 60 * time.Millisecond
	var times []time.Time
	err := fast(WithMaxAttempts(2)).Do(context.Background(), false, func(context.Context, int) error {
		times = append(times, time.Now())
		return delayed{wait}
	})
	if err == nil || len(times) != 2 {
		t.Fatalf("attempts = %d, err %v; want 2 attempts and an error", len(times), err)
	}
	if gap := times[1].Sub(times[0]); gap < wait {
		t.Fatalf("second attempt %v after the first, want at least the server's %v", gap, wait)
	}
}

func TestDo_ServerDelayBeyondMaxOrDeadlineIsNotWaited(t *testing.T) {
	n := 0
	err := fast().Do(context.Background(), true, func(context.Context, int) error {
		n++
		return delayed{MaxServerDelay + time.Second}
	})
	if n != 1 || !errors.As(err, new(delayed)) {
		t.Fatalf("attempts = %d, err %v; want one attempt and its error", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n = 0
	err = fast().Do(ctx, true, func(context.Context, int) error {
		n++
		return delayed{5 * time.Second}
	})
	if n != 1 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("attempts = %d, err %v; want one attempt, stopped by the deadline", n, err)
	}
}

// The documented default budget: 20% of requests plus a burst of 10. A
// client that only ever fails gets exactly 10 retries for its first 5
// calls (the burst), then one per 5 calls (the ratio): 30 for 105 calls.
func TestNew_DefaultBudgetIs20PercentOfRequestsPlusABurstOf10(t *testing.T) {
	p := must(New(WithBackoff(time.Microsecond, time.Microsecond), WithMaxAttempts(3)))
	const calls = 105
	for range calls {
		_ = p.Do(testCtx(t), true, func(context.Context, int) error { return classed{Unprocessed} })
	}
	granted, _ := p.Budget().Stats()
	if granted != 30 {
		t.Fatalf("default budget granted %d retries for %d failing calls; want 30 (burst 10 + 20%% of the 100 after it)", granted, calls)
	}
}

// pending is an "an earlier attempt of this call is still running" answer.
type pending struct{}

func (pending) Error() string             { return "in progress" }
func (pending) RetryClass() Class         { return Unprocessed }
func (pending) RetryDelay() time.Duration { return time.Millisecond }
func (pending) RetryPending() bool        { return true }

// A call whose attempts all timed out, the last one answered by its own
// earlier attempt still running, learns that attempt's outcome: the
// Pending answer is asked again without spending one of the attempts.
func TestDo_PendingAnswerDoesNotSpendAnAttempt(t *testing.T) {
	var nums []int
	err := fast().Do(testCtx(t), true, func(_ context.Context, n int) error {
		nums = append(nums, n)
		switch len(nums) {
		case 1, 2:
			return classed{MaybeProcessed} // timed out, may have acted
		case 3:
			return pending{}
		}
		return nil
	})
	if err != nil || fmt.Sprint(nums) != "[1 2 3 3]" {
		t.Fatalf("attempt numbers %v, err %v; want [1 2 3 3] and success", nums, err)
	}
}

// Pending answers are bounded: at most MaxAttempts−1 of them are asked
// again free, so a call sees at most 2×MaxAttempts−1 of its requests sent.
func TestDo_PendingAnswersAreBounded(t *testing.T) {
	n := 0
	err := fast(WithMaxAttempts(3)).Do(testCtx(t), true, func(context.Context, int) error {
		n++
		return pending{}
	})
	if n != 5 || !errors.As(err, new(pending)) {
		t.Fatalf("%d attempts, err %v; want 5 (3 + 2 free) and the pending error", n, err)
	}
	n = 0
	_ = fast(WithMaxAttempts(1)).Do(testCtx(t), true, func(context.Context, int) error { n++; return pending{} })
	if n != 1 {
		t.Fatalf("%d attempts with retries off; want 1", n)
	}
}

// Asking a Pending answer again takes no budget token: refusing it would
// report an effect that happened as a failure.
func TestDo_PendingAnswerRetriedWithAnEmptyBudget(t *testing.T) {
	b := NewBudget(0, 1)
	p := must(New(WithBackoff(time.Microsecond, time.Microsecond), WithBudget(b)))
	_ = p.Do(testCtx(t), true, func(context.Context, int) error { return classed{Unprocessed} }) // spends the token
	calls := 0
	err := p.Do(testCtx(t), true, func(context.Context, int) error {
		if calls++; calls == 1 {
			return pending{}
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("%d attempts, err %v; want the pending answer asked again", calls, err)
	}
	if granted, _ := b.Stats(); granted != 1 {
		t.Fatalf("budget granted %d retries; want 1 (the pending one is free)", granted)
	}
}

// A refused connection reached no server, so retrying it spends no budget
// token: an empty budget still lets the call go elsewhere, while a reset
// (the server may have worked) is refused its retry.
func TestDo_RefusedConnectionRetriedWithAnEmptyBudget(t *testing.T) {
	b := NewBudget(0, 1)
	p := must(New(WithBackoff(time.Microsecond, time.Microsecond), WithBudget(b)))
	_ = p.Do(testCtx(t), true, func(context.Context, int) error { return classed{Unprocessed} }) // spends the token
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	calls := 0
	err = p.Do(testCtx(t), false, func(ctx context.Context, _ int) error {
		if calls++; calls == 1 {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr) // a real refusal
			if err == nil {
				c.Close()
				return errors.New("nothing should listen there")
			}
			return fmt.Errorf("attempt 1: %w", err)
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("%d attempts, err %v; want the refused attempt retried", calls, err)
	}
	calls = 0
	err = p.Do(testCtx(t), true, func(context.Context, int) error {
		calls++
		return &net.OpError{Op: "read", Err: syscall.ECONNRESET}
	})
	if !errors.Is(err, ErrBudgetExhausted) || calls != 1 {
		t.Fatalf("reset: %d attempts, err %v; want one attempt and ErrBudgetExhausted", calls, err)
	}
	// The first call's second retry and the reset's were refused.
	if granted, refusedN := b.Stats(); granted != 1 || refusedN != 2 {
		t.Fatalf("budget granted %d, refused %d; want 1 and 2 (the refused connection's retry is free)", granted, refusedN)
	}
}

// A refused connection (no process at the address: a dead instance still
// listed) spends none of the call's attempts, up to MaxRefusedFree of
// them, so a call gets past more dead instances than it has attempts
// (report r54a); retries off stay off; and the bound holds when every
// attempt is refused.
func TestDo_RefusalsSpendNoAttemptUpToABound(t *testing.T) {
	refusedErr := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	n := 0
	err := fast(WithMaxAttempts(3)).Do(testCtx(t), false, func(context.Context, int) error {
		if n++; n <= 5 {
			return refusedErr
		}
		return nil
	})
	if err != nil || n != 6 {
		t.Fatalf("5 refusals then an answer: %d attempts, err %v; want 6 and success", n, err)
	}
	n = 0
	err = fast(WithMaxAttempts(3)).Do(testCtx(t), false, func(context.Context, int) error { n++; return refusedErr })
	if want := 3 + MaxRefusedFree; n != want || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("every attempt refused: %d attempts, err %v; want %d (3 + MaxRefusedFree)", n, err, want)
	}
	n = 0
	_ = fast(WithMaxAttempts(1)).Do(testCtx(t), false, func(context.Context, int) error { n++; return refusedErr })
	if n != 1 {
		t.Fatalf("%d attempts with retries off; want 1", n)
	}
	// A request served (a timeout that may have acted, then one that did
	// not) spends its attempt as before.
	n = 0
	_ = fast(WithMaxAttempts(3)).Do(testCtx(t), true, func(context.Context, int) error { n++; return classed{Unprocessed} })
	if n != 3 {
		t.Fatalf("%d attempts of unprocessed failures; want 3", n)
	}
}

// The defaults docs/client.md states: 3 attempts, backoff from 10 ms to
// 500 ms, 8 free refusals, server delays waited up to 10 s.
func TestNew_DocumentedDefaults(t *testing.T) {
	p := must(New())
	if p.maxAttempts != 3 {
		t.Fatalf("default attempts %d, want 3", p.maxAttempts)
	}
	for range 50 {
		if d := p.backoff(1); d < 5*time.Millisecond || d > 10*time.Millisecond {
			t.Fatalf("first backoff %s, want within [5ms, 10ms]", d)
		}
		if d := p.backoff(20); d < 250*time.Millisecond || d > 500*time.Millisecond {
			t.Fatalf("20th backoff %s, want within [250ms, 500ms] (the cap)", d)
		}
	}
	if MaxRefusedFree != 8 || MaxServerDelay != 10*time.Second {
		t.Fatalf("MaxRefusedFree %d, MaxServerDelay %s; docs/client.md says 8 and 10s", MaxRefusedFree, MaxServerDelay)
	}
}

// freeAnswer is an answer no server worked for (a router without the
// route): its retry takes no budget token but spends its attempt.
type freeAnswer struct{}

func (freeAnswer) Error() string     { return "no such route" }
func (freeAnswer) RetryClass() Class { return Unprocessed }
func (freeAnswer) RetryFree() bool   { return true }

func TestDo_FreerRetriedWithAnEmptyBudgetButSpendsItsAttempt(t *testing.T) {
	b := NewBudget(0, 1)
	p := must(New(WithBackoff(time.Microsecond, time.Microsecond), WithBudget(b)))
	_ = p.Do(testCtx(t), true, func(context.Context, int) error { return classed{Unprocessed} }) // spends the token
	calls := 0
	err := p.Do(testCtx(t), false, func(context.Context, int) error { calls++; return freeAnswer{} })
	if calls != 3 || errors.Is(err, ErrBudgetExhausted) || !errors.As(err, new(freeAnswer)) {
		t.Fatalf("%d attempts, err %v; want 3 (retried without a token, each spending an attempt)", calls, err)
	}
	if granted, _ := b.Stats(); granted != 1 {
		t.Fatalf("budget granted %d retries; want 1 (the Freer's are free)", granted)
	}
}

// A caller that has gone stops the call before its retry: no token is
// spent on a retry nobody waits for.
func TestDo_CancelledCallerSpendsNoToken(t *testing.T) {
	b := NewBudget(0, 1)
	p := must(New(WithBackoff(time.Microsecond, time.Microsecond), WithBudget(b)))
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := p.Do(ctx, true, func(context.Context, int) error { calls++; cancel(); return classed{Unprocessed} })
	if calls != 1 || !errors.Is(err, context.Canceled) {
		t.Fatalf("%d attempts, err %v; want 1 and context.Canceled", calls, err)
	}
	if granted, _ := b.Stats(); granted != 0 {
		t.Fatalf("budget granted %d retries to a cancelled call; want 0", granted)
	}
}
