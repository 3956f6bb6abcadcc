// Package backoff spaces out retries: those that go on forever (a
// registrar re-registering, an instancer or snapshot re-connecting, the
// lifecycle's self-check) and a call's few attempts (retry): capped
// exponential growth
// with "equal jitter", so processes that lost the registry together do not
// come back in lockstep, and none comes back sooner than half a step.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff yields the waits of one failure sequence. It is not safe for
// concurrent use; each retry loop owns one.
type Backoff struct {
	min, max, step time.Duration
}

// New returns a backoff whose step doubles from min up to max. A max
// below min is taken as min (callers check their bounds where a user
// gives them: every WithBackoff option refuses max < min).
func New(min, max time.Duration) *Backoff {
	if max < min {
		max = min
	}
	return &Backoff{min: min, max: max}
}

// Next returns the wait before the next attempt — a random duration in
// [step/2, step] — and grows the step.
func (b *Backoff) Next() time.Duration {
	if b.step == 0 {
		b.step = b.min
	} else {
		b.step = min(b.step*2, b.max)
	}
	return jitter(b.step)
}

// Nth returns the wait before retry n (1 for the first) of a sequence
// whose step doubles from minWait up to maxWait: what the n-th Next of
// New(minWait, maxWait) returns, for loops that count their attempts
// (retry) instead of keeping a Backoff.
func Nth(minWait, maxWait time.Duration, n int) time.Duration {
	maxWait = max(maxWait, minWait)
	step := maxWait
	if n < 1 {
		n = 1
	}
	if n-1 < 32 {
		step = min(maxWait, minWait<<(n-1))
	}
	if step <= 0 { // minWait<<(n-1) overflowed
		step = maxWait
	}
	return jitter(step)
}

// jitter is "equal jitter": a random duration in [step/2, step].
func jitter(step time.Duration) time.Duration {
	if step <= 0 {
		return 0
	}
	half := step / 2
	return half + rand.N(step-half+1)
}

// Reset starts the next failure sequence from min again.
func (b *Backoff) Reset() { b.step = 0 }

// Sleep waits d or until ctx ends; it reports whether the whole d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	return SleepUnless(ctx, d, nil)
}

// SleepUnless is Sleep that also ends early, returning true, when wake is
// closed (a nil wake never is): a retrier told that what it waits for is
// back need not sleep out its backoff.
func SleepUnless(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-wake:
		return true
	case <-ctx.Done():
		return false
	}
}
