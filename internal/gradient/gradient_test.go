package gradient

import (
	"testing"
	"time"
)

// run folds n windows of latency avg in, each with the limit fully used.
func run(g *Limit, n int, avg time.Duration) float64 {
	var lim float64
	for range n {
		lim = g.Update(avg, int64(g.limit)+1)
	}
	return lim
}

func TestLimit_GrowsAtSteadyLatencyAndShrinksWhenItRises(t *testing.T) {
	for name, g := range map[string]Limit{"average": New(20, 5, 500, 2), "lowest": NewLowest(20, 5, 500, 2)} {
		steady := run(&g, 30, time.Millisecond)
		if steady <= 20 {
			t.Fatalf("%s: limit after 30 windows at steady latency = %v, want above 20", name, steady)
		}
		if slow := run(&g, 30, 10*time.Millisecond); slow > steady/2 {
			t.Fatalf("%s: limit after latency rose 10× = %v, want at most half of %v", name, slow, steady)
		}
	}
}

// A limit that keeps latency at 3× its unqueued level must stay held down
// with the lowest baseline; the average baseline learns 3× as normal.
func TestLimit_LowestBaselineDoesNotLearnAQueueAsNormal(t *testing.T) {
	low, avg := NewLowest(50, 5, 500, 2), New(50, 5, 500, 2)
	for _, g := range []*Limit{&low, &avg} {
		run(g, 20, time.Millisecond)
		run(g, 400, 3*time.Millisecond)
	}
	// The queue allowance (max(4, √limit)) holds it at 12 at 3×.
	if low.limit > 15 {
		t.Fatalf("lowest baseline: limit after 400 windows at 3× = %v, want it held down (≤ 15)", low.limit)
	}
	if avg.limit <= 100 {
		t.Fatalf("average baseline: limit = %v; the comparison needs it to have learnt 3× as normal", avg.limit)
	}
}

func TestLimit_AppLimitedWindowsLeaveItAndCutStaysInBounds(t *testing.T) {
	g := NewLowest(100, 10, 200, 2)
	for i := range 50 {
		if lim := g.Update(time.Duration(i+1)*time.Millisecond, 10); lim != 100 {
			t.Fatalf("window %d with 10 in flight of 100 moved the limit to %v", i, lim)
		}
	}
	if lim := g.Cut(0.5); lim != 50 {
		t.Fatalf("Cut(0.5) of 100 = %v, want 50", lim)
	}
	for range 10 {
		g.Cut(0.5)
	}
	if g.limit != 10 {
		t.Fatalf("limit after many cuts = %v, want the floor 10", g.limit)
	}
}

// With the lowest baseline, windows in which the limit held nothing back
// teach it a slower service; windows run at the limit do not.
func TestLimit_LowestBaselineRelearnsFromUnqueuedWindows(t *testing.T) {
	g := NewLowest(20, 5, 500, 2)
	run(&g, 20, time.Millisecond)
	lim := g.limit
	for range 100 {
		g.Update(3*time.Millisecond, 1) // the service is slower, nothing queued
	}
	if g.limit != lim {
		t.Fatalf("app-limited windows moved the limit from %v to %v", lim, g.limit)
	}
	if l := run(&g, 30, 3*time.Millisecond); l <= lim {
		t.Fatalf("limit at the relearnt latency = %v, want grown above %v", l, lim)
	}
}
