package retry

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// fakeClock is advanced by the attempts themselves, so the latency the
// policy learns is exact whatever the machine's load.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// teach runs n successful calls whose attempts take d on c.
func teach(t *testing.T, p *Policy, c *fakeClock, n int, d time.Duration) {
	t.Helper()
	for range n {
		if err := p.Do(testCtx(t), true, func(context.Context, int) error { c.advance(d); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	c.advance(adaptiveRefresh) // the deadline is recomputed at most this often
}

func adaptivePolicy(c *fakeClock, opts ...Option) *Policy {
	return fast(append([]Option{WithClock(c.now)}, opts...)...)
}

// The deadline is 4 × the p99 of what the policy saw (read as the top of
// its 25 % histogram bucket), the cap before it has seen 20 attempts, and
// clamped to [DefaultAdaptiveFloor, DefaultAdaptiveCap].
func TestAdaptiveTimeout_FollowsObservedP99WithinFloorAndCap(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := adaptivePolicy(c)
	if got := p.AttemptTimeout(); got != DefaultAdaptiveCap {
		t.Fatalf("before any sample: %s, want the cap %s", got, DefaultAdaptiveCap)
	}
	teach(t, p, c, 200, 100*time.Millisecond)
	if got := p.AttemptTimeout(); got < 400*time.Millisecond || got > 520*time.Millisecond {
		t.Fatalf("after 200 attempts of 100ms: %s, want 4 × ~100ms", got)
	}

	c2 := &fakeClock{t: time.Unix(1000, 0)}
	p2 := adaptivePolicy(c2)
	teach(t, p2, c2, 200, 100*time.Microsecond)
	if got := p2.AttemptTimeout(); got != DefaultAdaptiveFloor {
		t.Fatalf("after attempts of 100µs: %s, want the floor %s", got, DefaultAdaptiveFloor)
	}
	c3 := &fakeClock{t: time.Unix(1000, 0)}
	p3 := adaptivePolicy(c3)
	teach(t, p3, c3, 200, time.Second)
	if got := p3.AttemptTimeout(); got != DefaultAdaptiveCap {
		t.Fatalf("after attempts of 1s: %s, want the cap %s", got, DefaultAdaptiveCap)
	}
}

// An old latency level is forgotten within two 10 s windows.
func TestAdaptiveTimeout_ForgetsOldLatency(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := adaptivePolicy(c)
	teach(t, p, c, 10, time.Second)           // 10 s of 1 s (deadline: the cap)
	teach(t, p, c, 200, 100*time.Millisecond) // 20 s of 100 ms
	if got := p.AttemptTimeout(); got > 520*time.Millisecond {
		t.Fatalf("after 20 s of 100ms attempts: %s, want the old 1s level forgotten", got)
	}
}

// With no per-attempt timeout configured, a hung attempt of an idempotent
// call is abandoned at the learned deadline and retried; the attempt's
// context carries that deadline. A call that could not be retried after a
// timeout gets none, and the last attempt gets the cap.
func TestAdaptiveTimeout_AbandonsHungAttemptByDefault(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := adaptivePolicy(c, WithoutHedging()) // the deadline alone; hedge_test.go has the hedge
	teach(t, p, c, 200, 10*time.Millisecond)
	learned := p.AttemptTimeout()

	var deadlines []time.Duration
	err := p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		dl, ok := ctx.Deadline()
		if !ok {
			t.Fatalf("attempt %d has no deadline", n)
		}
		deadlines = append(deadlines, time.Until(dl))
		if n == 1 {
			<-ctx.Done() // hung
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Do = %v, want the second attempt's success", err)
	}
	if len(deadlines) != 2 || deadlines[0] > learned || deadlines[1] > learned {
		t.Fatalf("attempt deadlines %v, want 2 within the learned %s", deadlines, learned)
	}

	var timedOut error
	_ = p.Do(testCtx(t), true, func(ctx context.Context, n int) error {
		if n < 3 {
			<-ctx.Done()
			timedOut = ctx.Err()
			return ctx.Err()
		}
		dl, _ := ctx.Deadline()
		if left := time.Until(dl); left <= learned {
			t.Errorf("last attempt's deadline %s away, want the cap %s", left, DefaultAdaptiveCap)
		}
		return nil
	})
	if !errors.Is(timedOut, context.DeadlineExceeded) {
		t.Fatalf("hung attempts ended with %v", timedOut)
	}

	_ = p.Do(context.Background(), false, func(ctx context.Context, _ int) error {
		if _, ok := ctx.Deadline(); ok {
			t.Error("a non-idempotent attempt got a deadline from the policy")
		}
		return nil
	})
}

// The defaults docs/client.md states, in its numbers rather than the
// constants': no learned deadline before 20 attempts, then 4 × p99
// clamped to [250 ms, 2 s].
func TestAdaptiveTimeout_DocumentedDefaults(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := adaptivePolicy(c)
	teach(t, p, c, 19, 10*time.Millisecond)
	if got := p.AttemptTimeout(); got != 2*time.Second {
		t.Fatalf("after 19 attempts: %s, want the 2s cap (fewer than 20 seen)", got)
	}
	teach(t, p, c, 1, 10*time.Millisecond)
	if got := p.AttemptTimeout(); got != 250*time.Millisecond {
		t.Fatalf("after 20 attempts of 10ms: %s, want the 250ms floor", got)
	}
	c2 := &fakeClock{t: time.Unix(1000, 0)}
	p2 := adaptivePolicy(c2)
	teach(t, p2, c2, 100, time.Second)
	if got := p2.AttemptTimeout(); got != 2*time.Second {
		t.Fatalf("after attempts of 1s: %s, want the 2s cap", got)
	}
}

// A latency level learnt before a quiet spell is not the "last 10–20 s"
// once the spell has lasted two windows: the next attempts find neither
// the old deadline nor the old hedge delay (p99). Before, the first
// reading after an hour of quiet rotated once and kept the window of an
// hour ago, so 200 slow attempts of then outvoted 30 fast ones of now.
func TestAdaptiveTimeout_ForgetsLatencyLearntBeforeAQuietSpell(t *testing.T) {
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := adaptivePolicy(c)
	// An incident: 200 attempts of 400ms within one window, as many
	// callers at once make them.
	for range 200 {
		p.adaptive.observe(400 * time.Millisecond)
	}
	c.advance(adaptiveRefresh)
	if got := p.AttemptTimeout(); got < time.Second {
		t.Fatalf("after 200 attempts of 400ms: %s, want about 4 × 400ms", got)
	}
	c.advance(time.Hour) // quiet
	teach(t, p, c, 30, 10*time.Millisecond)
	if got := p.AttemptTimeout(); got != DefaultAdaptiveFloor {
		t.Fatalf("after an hour of quiet and 30 attempts of 10ms: %s, want the floor %s (the incident forgotten)", got, DefaultAdaptiveFloor)
	}
	if got := p.adaptive.latencyP99(); got > 20*time.Millisecond {
		t.Fatalf("p99 after the quiet spell = %s, want that of the 10ms attempts", got)
	}
}
