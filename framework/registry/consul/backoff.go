package consul

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential backoff with "equal jitter": each delay is
// half the current step plus a random part of the other half, so retries of
// many processes spread out but never come sooner than half a step.
type backoff struct {
	min, max time.Duration
	step     time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	if maxDelay < minDelay {
		maxDelay = minDelay
	}
	return &backoff{min: minDelay, max: maxDelay}
}

// next returns the delay before the next attempt and grows the step.
func (b *backoff) next() time.Duration {
	if b.step == 0 {
		b.step = b.min
	} else {
		b.step = min(b.step*2, b.max)
	}
	half := b.step / 2
	return half + rand.N(half+1)
}

// reset starts the next failure sequence from the minimum again.
func (b *backoff) reset() { b.step = 0 }

// sleep waits d or until ctx ends; it reports whether the full d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
