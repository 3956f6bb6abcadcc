package climit

import (
	"testing"
	"time"
)

// rounds fills the limit, lets rtt pass and releases every call as a
// success, n times: n × rtt of calls at the limit.
func rounds(t *testing.T, l *Limiter, clk *clock, n int, rtt time.Duration) {
	t.Helper()
	for range n {
		var toks []Token
		for {
			tok, ok := l.Acquire()
			if !ok {
				break
			}
			toks = append(toks, tok)
		}
		clk.t = clk.t.Add(rtt)
		for _, tok := range toks {
			tok.Release(Success)
		}
	}
}

func TestLimiter_WithLatencyFollowsTheRoundTrip(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(10, 2, 1000), WithLatency(2), WithClock(clk.now))
	rounds(t, l, clk, 3000, time.Millisecond) // 30 windows at 1 ms
	fast := l.Stats().Limit
	if fast <= 10 {
		t.Fatalf("limit after 3 s of 1 ms round trips = %d, want grown above 10", fast)
	}
	// The service queues: the round trip is 10× with as many in flight.
	rounds(t, l, clk, 300, 10*time.Millisecond)
	slow := l.Stats().Limit
	if slow > fast/2 {
		t.Fatalf("limit after 3 s of 10 ms round trips = %d, want at most half of %d", slow, fast)
	}
	var toks []Token
	for range slow {
		tok, ok := l.Acquire()
		if !ok {
			t.Fatalf("call under the limit %d refused", slow)
		}
		toks = append(toks, tok)
	}
	if _, ok := l.Acquire(); ok {
		t.Fatalf("call over the limit %d admitted", slow)
	}
	for _, tok := range toks {
		tok.Release(Ignored)
	}
	if st := l.Stats(); st.Limited == 0 {
		t.Fatalf("stats %+v: want the refused call counted", st)
	}
}

func TestLimiter_WithLatencyDropsStillCut(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(100, 2, 1000), WithLatency(2), WithBackoff(0.5, 0), WithClock(clk.now))
	tok, _ := l.Acquire()
	tok.Release(Dropped)
	if n := l.Stats().Limit; n != 50 {
		t.Fatalf("limit after an overload answer = %d, want 50", n)
	}
	// The next window adapts from the cut limit, not from before it.
	rounds(t, l, clk, 100, time.Millisecond)
	if n := l.Stats().Limit; n < 50 || n > 60 {
		t.Fatalf("limit one window after the cut = %d, want near 50", n)
	}
}

func TestWithLatency_BadToleranceIsAnError(t *testing.T) {
	if _, err := New(WithLatency(1)); err == nil {
		t.Fatal("WithLatency(1) accepted, want an error")
	}
}

// With WithLatency too, a quiet spell brings a cut limit back when the
// traffic after it comes as a burst: the spell is light time, whatever
// the window it ends in does. Before, the window the spell stretched
// closed with the burst's peak in it and counted as one binding window,
// so the spell counted as nothing and the burst met the cut limit.
func TestLimiter_WithLatencyACutLimitComesBackOverAQuietSpellEndedByABurst(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(100, 2, 1000), WithLatency(2), WithClock(clk.now))
	rounds(t, l, clk, 300, time.Millisecond) // a baseline at 1 ms
	for range 60 {                           // an incident: every call refused as overloaded
		clk.t = clk.t.Add(100 * time.Millisecond)
		tok, _ := l.Acquire()
		tok.Release(Dropped)
	}
	cut := l.Stats().Limit
	if cut > 10 {
		t.Fatalf("limit after 60 drops = %d, want it cut (≤ 10)", cut)
	}
	clk.t = clk.t.Add(30 * time.Second) // nothing comes
	// The burst: 50 callers, each calling again as soon as answered
	// (1 ms, the baseline), for 300 ms.
	late := 0
	for i := range 300 {
		var toks []Token
		for range 50 {
			tok, ok := l.Acquire()
			if !ok {
				if i >= 150 { // past the burst's first windows
					late++
				}
				continue
			}
			toks = append(toks, tok)
		}
		clk.t = clk.t.Add(time.Millisecond)
		for _, tok := range toks {
			tok.Release(Success)
		}
	}
	if late > 0 {
		t.Fatalf("limit cut to %d, 30 s of quiet, then a burst of 50 at the baseline round trip: %d refused from 150 ms on (limit %d), want none", cut, late, l.Stats().Limit)
	}
}
