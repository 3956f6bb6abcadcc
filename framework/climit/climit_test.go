package climit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter_RefusesPastTheLimit(t *testing.T) {
	l := mustNew(t, WithLimits(2, 2, 10))
	a, okA := l.Acquire()
	b, okB := l.Acquire()
	if !okA || !okB {
		t.Fatal("calls under the limit refused")
	}
	if _, ok := l.Acquire(); ok {
		t.Fatal("third call with limit 2 admitted")
	}
	a.Release(Ignored)
	if c, ok := l.Acquire(); !ok {
		t.Fatal("call after a release refused")
	} else {
		c.Release(Ignored)
	}
	b.Release(Ignored)
	if st := l.Stats(); st.Limited != 1 || st.InFlight != 0 || st.Limit != 2 {
		t.Fatalf("stats %+v, want 1 limited, none in flight, limit 2", st)
	}
}

func TestLimiter_DropsCutOncePerCooldownAndSuccessesRaise(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(100, 10, 200), WithBackoff(0.5, time.Second), WithClock(clk.now))
	// Fifty refusals at one moment are one overload: one cut.
	for range 50 {
		tok, _ := l.Acquire()
		tok.Release(Dropped)
	}
	if n := l.Stats().Limit; n != 50 {
		t.Fatalf("limit after a burst of drops = %d, want 50 (one cut by half)", n)
	}
	clk.t = clk.t.Add(time.Second)
	tok, _ := l.Acquire()
	tok.Release(Dropped)
	if n := l.Stats().Limit; n != 25 {
		t.Fatalf("limit after a drop past the cooldown = %d, want 25", n)
	}
	for range 20 {
		clk.t = clk.t.Add(time.Second)
		tok, _ := l.Acquire()
		tok.Release(Dropped)
	}
	if n := l.Stats().Limit; n != 10 {
		t.Fatalf("limit after many drops = %d, want the floor 10", n)
	}
	// Successes with the limit in use raise it again, one per limit's
	// worth of calls.
	rounds(t, l, clk, 100, 0)
	if n := l.Stats().Limit; n < 50 {
		t.Fatalf("limit after 100 full rounds of successes = %d, want it well above the floor", n)
	}
}

func TestLimiter_SuccessFarBelowTheLimitDoesNotRaiseIt(t *testing.T) {
	l := mustNew(t, WithLimits(100, 10, 1000))
	for range 1000 {
		tok, _ := l.Acquire()
		tok.Release(Success)
	}
	if n := l.Stats().Limit; n != 100 {
		t.Fatalf("limit after one-at-a-time calls = %d, want 100 unchanged", n)
	}
}

func TestMiddleware_OverloadedServiceCutsTheLimitThenCallsFailFast(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(4, 1, 4), WithBackoff(0.5, 0), WithClock(clk.now))
	calls := 0
	overloaded := func(context.Context, any) (any, error) {
		calls++
		return nil, fmt.Errorf("user: %w", svcerr.ErrOverloaded)
	}
	ep := Middleware(l, nil)(overloaded)
	for range 3 {
		ep(context.Background(), nil)
	}
	if n := l.Stats().Limit; n != 1 {
		t.Fatalf("limit after 3 overload answers = %d, want the floor 1", n)
	}
	// Hold the one slot; the next call fails without reaching the service.
	tok, _ := l.Acquire()
	before := calls
	_, err := ep(context.Background(), nil)
	if !errors.Is(err, ErrLimited) || calls != before {
		t.Fatalf("err %v, calls %d→%d; want ErrLimited without a call", err, before, calls)
	}
	tok.Release(Ignored)
}

// An endpoint that panics (the panic recovered higher up, as the
// transports do for handlers) gives its token back, and the panic counts
// neither way: the capacity stays whole however many there are.
func TestMiddleware_PanicReleasesTheToken(t *testing.T) {
	l := mustNew(t, WithLimits(2, 2, 2))
	ep := Middleware(l, nil)(func(context.Context, any) (any, error) { panic("handler bug") })
	for range 3 {
		func() {
			defer func() {
				if v := recover(); v != "handler bug" {
					t.Errorf("recovered %v, want the endpoint's panic", v)
				}
			}()
			_, _ = ep(context.Background(), nil)
		}()
	}
	if st := l.Stats(); st.InFlight != 0 || st.Limit != 2 || st.Limited != 0 {
		t.Fatalf("stats after 3 recovered panics %+v, want none in flight, limit 2, none limited", st)
	}
	ok := Middleware(l, nil)(func(context.Context, any) (any, error) { return "ok", nil })
	if _, err := ok(context.Background(), nil); err != nil {
		t.Fatalf("a healthy call after the panics: %v", err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want Outcome
	}{
		{nil, Success},
		{fmt.Errorf("x: %w", svcerr.ErrOverloaded), Dropped},
		{&svcerr.Error{Kind: svcerr.Unavailable, Code: svcerr.CodeOverloaded}, Dropped},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), Dropped},
		{svcerr.New(svcerr.NotFound, "nope", ""), Ignored},
		{context.Canceled, Ignored},
	}
	for _, tc := range cases {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func mustNew(t testing.TB, opts ...Option) *Limiter {
	t.Helper()
	l, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNew_BadOptionIsAnErrorNamingIt(t *testing.T) {
	for name, o := range map[string]Option{
		"climit.WithLimits":  WithLimits(1, 2, 3),
		"climit.WithBackoff": WithBackoff(1.5, 0),
		"climit.WithClock":   WithClock(nil),
	} {
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s with a bad value: %v, want an error naming it", name, err)
		}
	}
}

// Successes and drops released from many goroutines at once: under -race
// this fails if Release reads the estimate outside its lock.
func TestLimiter_ConcurrentReleasesAreSafe(t *testing.T) {
	l := mustNew(t, WithLimits(40, 20, 100), WithBackoff(0.9, 0))
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 500; i++ {
				tok, ok := l.Acquire()
				if !ok {
					continue
				}
				if (g+i)%7 == 0 {
					tok.Release(Dropped)
				} else {
					tok.Release(Success)
				}
			}
		}(g)
	}
	for g := 0; g < 8; g++ {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("releases did not finish within 30s")
		}
	}
	if st := l.Stats(); st.InFlight != 0 || st.Limit < 20 || st.Limit > 100 {
		t.Fatalf("stats %+v, want nothing in flight and a limit within [20, 100]", st)
	}
}

// Report j50a 1 and 2: a limit cut to its floor by an incident stayed
// there while fewer than half of it were in flight, and refused the next
// normal burst. Light successes bring it back to its start once
// RecoverAfter has passed without a drop, never past the start; a drop
// restarts the wait.
func TestLimiter_ACutLimitDriftsBackToItsStartUnderLightLoad(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(500, 20, 5000), WithClock(clk.now))
	for range 40 {
		clk.t = clk.t.Add(100 * time.Millisecond)
		tok, _ := l.Acquire()
		tok.Release(Dropped)
	}
	if n := l.Stats().Limit; n != 20 {
		t.Fatalf("limit after 40 drops = %d, want the floor 20", n)
	}
	light := func(d time.Duration) { // one call at a time, every 10 ms
		for end := clk.t.Add(d); clk.t.Before(end); {
			clk.t = clk.t.Add(10 * time.Millisecond)
			tok, _ := l.Acquire()
			tok.Release(Success)
			if n := l.Stats().Limit; n > 500 {
				t.Fatalf("limit drifted to %d, past its start 500", n)
			}
		}
	}
	light(RecoverAfter - 100*time.Millisecond)
	if n := l.Stats().Limit; n != 20 {
		t.Fatalf("limit %d within %v of the last drop, want 20 still", n, RecoverAfter)
	}
	light(time.Second)
	mid := l.Stats().Limit
	if mid <= 20 {
		t.Fatalf("limit %d a second past %v without a drop, want it drifting up", mid, RecoverAfter)
	}
	tok, _ := l.Acquire()
	tok.Release(Dropped)
	cut := l.Stats().Limit
	light(RecoverAfter - 100*time.Millisecond)
	if n := l.Stats().Limit; n != cut {
		t.Fatalf("limit moved from %d to %d within %v of a drop", cut, n, RecoverAfter)
	}
	light(10 * time.Second)
	if n := l.Stats().Limit; n != 500 {
		t.Fatalf("limit after 10 s of light calls = %d, want back at its start 500", n)
	}
}

// The defaults docs/overload.md states: start 500, floor 20, ceiling
// 5000; a drop cuts 10 %, at most once per 100 ms; a cut limit drifts
// back after 2 s without a drop, every 100 ms.
func TestNew_DocumentedDefaults(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithClock(clk.now))
	if n := l.Stats().Limit; n != 500 {
		t.Fatalf("initial limit %d, want 500", n)
	}
	drop := func() { tok, _ := l.Acquire(); tok.Release(Dropped) }
	drop()
	if n := l.Stats().Limit; n != 450 {
		t.Fatalf("limit after a drop %d, want 450 (cut by 10%%)", n)
	}
	clk.t = clk.t.Add(99 * time.Millisecond)
	drop()
	if n := l.Stats().Limit; n != 450 {
		t.Fatalf("limit after a drop 99ms later %d, want 450 (one cut per 100ms)", n)
	}
	for range 100 {
		clk.t = clk.t.Add(100 * time.Millisecond)
		drop()
	}
	if n := l.Stats().Limit; n != 20 {
		t.Fatalf("limit after many drops %d, want the floor 20", n)
	}
	if l.max != 5000 || RecoverAfter != 2*time.Second || DriftEvery != 100*time.Millisecond {
		t.Fatalf("ceiling %v, RecoverAfter %s, DriftEvery %s; docs/overload.md says 5000, 2s, 100ms", l.max, RecoverAfter, DriftEvery)
	}
}

// Successes raise the limit up to its ceiling, not past it.
func TestLimiter_SuccessesStopAtTheCeiling(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(4, 1, 5), WithClock(clk.now))
	rounds(t, l, clk, 200, 0)
	if n := l.Stats().Limit; n != 5 {
		t.Fatalf("limit after 200 full rounds of successes %d, want the ceiling 5", n)
	}
}

// A recovered panic in the endpoint counts neither way: it does not cut
// a limit that could be cut.
func TestMiddleware_PanicDoesNotCutTheLimit(t *testing.T) {
	l := mustNew(t, WithLimits(4, 1, 4), WithBackoff(0.5, 0))
	ep := Middleware(l, nil)(func(context.Context, any) (any, error) { panic("handler bug") })
	func() {
		defer func() { _ = recover() }()
		_, _ = ep(context.Background(), nil)
	}()
	if n := l.Stats().Limit; n != 4 {
		t.Fatalf("limit after a recovered panic %d, want 4 unchanged", n)
	}
}

// A limit an incident cut comes back over a quiet spell too, not only
// under light calls: the next burst after a minute without calls finds
// (nearly) the limit a fresh client has, as the server's shedder does
// after quiet. Before, a client whose traffic stopped (a quiet night, its
// callers moved elsewhere) kept the floor for good, and the first 100
// calls after it met a limit of 20: 80 refused with ErrLimited.
func TestLimiter_ACutLimitComesBackOverAQuietSpell(t *testing.T) {
	clk := &clock{t: time.Unix(1, 0)}
	l := mustNew(t, WithLimits(500, 20, 5000), WithClock(clk.now))
	for range 40 {
		clk.t = clk.t.Add(100 * time.Millisecond)
		tok, _ := l.Acquire()
		tok.Release(Dropped)
	}
	if n := l.Stats().Limit; n != 20 {
		t.Fatalf("limit after 40 drops = %d, want the floor 20", n)
	}
	clk.t = clk.t.Add(time.Minute) // no calls at all
	var toks []Token
	refused := 0
	for range 100 { // a burst, all at once
		tok, ok := l.Acquire()
		if !ok {
			refused++
			continue
		}
		toks = append(toks, tok)
	}
	for _, tok := range toks {
		tok.Release(Success)
	}
	if refused > 1 {
		t.Fatalf("a burst of 100 calls after a minute of quiet: %d refused (limit %d), want at most the one that found the cut limit", refused, l.Stats().Limit)
	}

	// The quiet spell counts only from the last drop's RecoverAfter on,
	// and a cap that binds is not quiet: a burst within RecoverAfter of a
	// drop still meets the cut limit.
	tok, _ := l.Acquire()
	tok.Release(Dropped)
	cut := l.Stats().Limit
	clk.t = clk.t.Add(RecoverAfter - 100*time.Millisecond)
	toks, refused = toks[:0], 0
	for range cut + 50 {
		tok, ok := l.Acquire()
		if !ok {
			refused++
			continue
		}
		toks = append(toks, tok)
	}
	if n := l.Stats().Limit; n != cut {
		t.Fatalf("limit moved from %d to %d within %v of a drop", cut, n, RecoverAfter)
	}
	if refused != 50 {
		t.Fatalf("burst of %d within %v of a drop: %d refused, want 50", cut+50, RecoverAfter, refused)
	}
	// Still bound a second later, with no call completing: not quiet.
	clk.t = clk.t.Add(time.Second)
	if _, ok := l.Acquire(); ok {
		t.Fatalf("call admitted past a bound limit of %d a second after the burst", cut)
	}
	for _, tok := range toks {
		tok.Release(Ignored)
	}
}
