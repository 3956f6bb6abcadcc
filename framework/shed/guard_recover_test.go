package shed

import (
	"testing"
	"time"
)

// docs/overload.md, "A cut limit comes back": after 20 light windows in a
// row (2 s of 100 ms windows) a cut limit starts back towards its start,
// not sooner. TestLimiter_ACutLimitComesBackUnderLightLoadAndAfterQuiet
// checks that it comes back; this checks that it waits, on the limiter's
// clock and defaults, so a shorter or longer wait (gradient.RecoverAfter 10 or 30) fails.
func TestGuard_CutLimitWaitsTwentyLightWindowsBeforeDrifting(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now))
	for range 20 {
		runWindow(t, l, clk, 110*time.Millisecond)
	}
	for range 40 { // the incident: every request in flight waits 2 s
		runWindow(t, l, clk, 2*time.Second)
	}
	// Light traffic: one 1 ms request every 10 ms, ten a 100 ms window,
	// the windows' minimum of samples.
	light := func(d time.Duration) {
		for range int(d / (10 * time.Millisecond)) {
			tok, why := l.Acquire()
			if why != Admitted {
				t.Fatalf("light request refused (%s)", why)
			}
			clk.Add(time.Millisecond)
			tok.Release()
			clk.Add(9 * time.Millisecond)
		}
	}
	// The first light requests close the incident's last window.
	light(200 * time.Millisecond)
	cut := l.Stats().Limit
	if cut > 100 {
		t.Fatalf("limit after the incident = %d, want it cut (≤ 100)", cut)
	}
	// 1.5 s more: 15 light windows, well short of 20.
	light(1500 * time.Millisecond)
	if n := l.Stats().Limit; n != cut {
		t.Fatalf("limit moved %d → %d within 15 light windows, want it left until 20", cut, n)
	}
	// 0.8 s more: 23 light windows, the drift has begun (the clock is
	// the test's: no scheduling enters the count).
	light(800 * time.Millisecond)
	if n := l.Stats().Limit; n <= cut {
		t.Fatalf("limit %d after 23 light windows, want it drifting back above %d", n, cut)
	}
}
