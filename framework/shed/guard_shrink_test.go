package shed

import (
	"testing"
	"time"
)

// docs/overload.md, "What it measures": past 2× its long-run latency the
// in-flight limit "shrinks in proportion to the excess (at most 10 % per
// window, never under the floor)". Latency tripling every window, so the
// long-run level never catches up, on the limiter's clock: the limit is
// cut window after window, never by more than a tenth, and the floor
// holds. A gradient clamped at 0.1 instead of
// 0.5 (an 18 % cut per window) passed every test of shed, climit and
// internal/gradient.
func TestGuard_LimitShrinksAtMostATenthPerWindow(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now))
	for range 30 {
		runWindow(t, l, clk, 10*time.Millisecond)
	}
	prev := l.Stats().Limit
	cuts := 0
	rtt := 10 * time.Millisecond
	for i := range 15 {
		rtt *= 3
		runWindow(t, l, clk, rtt)
		n := l.Stats().Limit
		if n < 10 {
			t.Fatalf("window %d: limit %d under the floor 10", i+1, n)
		}
		// Integer limits: a tenth of prev, rounded, plus one for the
		// truncation of the limit itself.
		if float64(n) < 0.9*float64(prev)-1 {
			t.Fatalf("window %d of rising latency: limit %d → %d, a cut of more than 10 %%", i+1, prev, n)
		}
		if n < prev {
			cuts++
		}
		prev = n
	}
	if cuts < 10 || prev > 200 {
		t.Fatalf("%d cuts over 15 windows of rising latency, limit %d at the end; want it cut window after window towards the floor", cuts, prev)
	}
}
