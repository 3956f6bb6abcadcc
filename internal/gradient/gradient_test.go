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

// Report j50a 2: a limit cut in an incident (200 → 25) stayed there at
// light load for good and refused the next normal burst. After
// RecoverAfter light windows in a row it drifts back to where it started,
// and no further.
func TestLimit_LightWindowsLetACutLimitDriftBackToItsStart(t *testing.T) {
	for name, g := range map[string]Limit{"average": New(200, 10, 2000, 2), "lowest": NewLowest(200, 10, 2000, 2)} {
		run(&g, 20, time.Millisecond)
		run(&g, 60, 20*time.Millisecond) // the incident: latency 20×
		cut := g.limit
		if cut > 100 {
			t.Fatalf("%s: limit after the incident = %v, want it cut (≤ 100)", name, cut)
		}
		for i := range RecoverAfter {
			if lim := g.Update(time.Millisecond, 1); lim != cut {
				t.Fatalf("%s: light window %d moved the limit from %v to %v, want it left for %d windows", name, i+1, cut, lim, RecoverAfter)
			}
		}
		for range 100 {
			g.Update(time.Millisecond, 1)
		}
		if g.limit != 200 {
			t.Fatalf("%s: limit after %d light windows = %v, want back at its start 200", name, RecoverAfter+100, g.limit)
		}
		// A window in which the limit binds restarts the count.
		g.Cut(0.1)
		bound := g.Update(time.Millisecond, int64(g.limit))
		for range RecoverAfter {
			g.Update(time.Millisecond, 1)
		}
		if g.limit != bound {
			t.Fatalf("%s: limit moved from %v to %v within %d light windows of a binding one", name, bound, g.limit, RecoverAfter)
		}
	}
}

// A window stretched by a quiet spell counts as the windows it spans.
func TestLimit_AQuietSpellCountsAsManyLightWindows(t *testing.T) {
	g := New(200, 10, 2000, 2)
	g.Cut(0.1)
	if lim := g.UpdateSpan(time.Millisecond, 1, 300); lim != 200 {
		t.Fatalf("limit after a light window spanning 300 = %v, want back at 200", lim)
	}
	g.Cut(0.1)
	if lim := g.UpdateSpan(time.Millisecond, 15, 300); lim >= 200 {
		t.Fatalf("limit %v after a window in which it bound, want it not drifted", lim)
	}
}
