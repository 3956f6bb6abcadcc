package shed

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLimiter_ShedsWhenInFlightReachesLimit(t *testing.T) {
	l := mustNew(t, WithQueueProbe(nil), WithLimits(3, 3, 3))
	var toks []Token
	for i := range 3 {
		tok, why := l.Acquire()
		if why != Admitted {
			t.Fatalf("request %d refused (%s) below the limit", i+1, why)
		}
		toks = append(toks, tok)
	}
	if _, why := l.Acquire(); why != ReasonLimit {
		t.Fatalf("4th request with 3 in flight and limit 3: got %q, want %q", why, ReasonLimit)
	}
	toks[0].Release()
	if tok, why := l.Acquire(); why != Admitted {
		t.Fatalf("after a release: got %q, want admitted", why)
	} else {
		tok.Release()
	}
	for _, tok := range toks[1:] {
		tok.Release()
	}
	st := l.Stats()
	if st.Admitted != 4 || st.ShedLimit != 1 || st.ShedQueue != 0 || st.InFlight != 0 || st.Limit != 3 {
		t.Fatalf("stats = %+v, want 4 admitted, 1 shed by limit, none in flight, limit 3", st)
	}
}

func TestLimiter_RefusedTokenReleaseIsInert(t *testing.T) {
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1))
	held, _ := l.Acquire()
	refused, why := l.Acquire()
	if why != ReasonLimit {
		t.Fatalf("got %q, want limit", why)
	}
	refused.Release()
	if n := l.Stats().InFlight; n != 1 {
		t.Fatalf("in flight after releasing a refused token = %d, want 1", n)
	}
	held.Release()
}

// runWindow holds the limiter full for rtt: it admits as many requests as
// the limit allows, moves the clock on and releases them, which closes
// one window whose mean latency is rtt.
func runWindow(t *testing.T, l *Limiter, clk *fakeClock, rtt time.Duration) {
	t.Helper()
	var toks []Token
	for {
		tok, why := l.Acquire()
		if why != Admitted {
			break
		}
		toks = append(toks, tok)
	}
	clk.Add(rtt)
	for _, tok := range toks {
		tok.Release()
	}
}

func TestLimiter_LimitFallsWhenLatencyRisesAndRecovers(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithLimits(50, 5, 500), WithWindow(time.Millisecond, 1))
	for range 30 {
		runWindow(t, l, clk, 2*time.Millisecond)
	}
	steady := l.Stats().Limit
	if steady <= 50 {
		t.Fatalf("limit after 30 windows at steady latency = %d, want it grown above the initial 50", steady)
	}
	for range 30 {
		runWindow(t, l, clk, 20*time.Millisecond)
	}
	slow := l.Stats().Limit
	if slow > steady/2 {
		t.Fatalf("limit after latency rose 10× = %d, want at most half of %d", slow, steady)
	}
	for range 60 {
		runWindow(t, l, clk, 2*time.Millisecond)
	}
	if rec := l.Stats().Limit; rec <= slow*2 {
		t.Fatalf("limit after latency came back = %d, want it recovered well above %d", rec, slow)
	}
}

func TestLimiter_LimitStaysWithinBounds(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithLimits(20, 10, 40), WithWindow(time.Millisecond, 1))
	for range 100 {
		runWindow(t, l, clk, time.Millisecond)
	}
	if n := l.Stats().Limit; n != 40 {
		t.Fatalf("limit under flat latency = %d, want the ceiling 40", n)
	}
	// A sudden 1000× rise: the limit falls to its floor long before the
	// long-run level catches up.
	for range 40 {
		runWindow(t, l, clk, time.Second)
	}
	if n := l.Stats().Limit; n != 10 {
		t.Fatalf("limit after latency rose 1000× = %d, want the floor 10", n)
	}
}

func TestLimiter_AppLimitedWindowsDoNotMoveTheLimit(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithLimits(100, 10, 1000), WithWindow(time.Millisecond, 1))
	// One request at a time, each slower than the last: far below the
	// limit, so latency says nothing about it.
	for i := range 50 {
		tok, _ := l.Acquire()
		clk.Add(time.Duration(i+1) * time.Millisecond)
		tok.Release()
	}
	if n := l.Stats().Limit; n != 100 {
		t.Fatalf("limit after app-limited windows = %d, want 100 unchanged", n)
	}
}

// probeFunc is a settable QueueProbe.
type probeFunc struct {
	mu sync.Mutex
	r  QueueReading
}

func (p *probeFunc) set(r QueueReading) {
	p.mu.Lock()
	p.r = r
	p.mu.Unlock()
}

func (p *probeFunc) read() QueueReading {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.r
}

// long is a run queue far past the target of 4 per CPU.
var long = 100 * runtime.GOMAXPROCS(0)

func TestLimiter_LongRunQueueShedsThenRelaxes(t *testing.T) {
	clk := newFakeClock()
	probe := &probeFunc{}
	l := mustNew(t, WithClock(clk.Now), WithQueueProbe(probe.read), WithQueueTarget(4, time.Millisecond))
	step := func() Reason {
		clk.Add(time.Millisecond)
		tok, why := l.Acquire()
		tok.Release()
		return why
	}

	for range 50 {
		if why := step(); why != Admitted {
			t.Fatalf("refused (%s) with an empty queue", why)
		}
	}
	// Overload: a long queue of our own, waiting 50ms to run.
	probe.set(QueueReading{Delay: 50 * time.Millisecond, Runnable: long})
	shed := 0
	for range 100 {
		if step() == ReasonQueue {
			shed++
		}
	}
	// The smoothed delay passes 1ms on the first reading; every request
	// after it meets the backlog.
	if shed < 99 || !l.Stats().Backlog {
		t.Fatalf("under overload: %d of 100 shed, backlog %v; want all but the first", shed, l.Stats().Backlog)
	}
	if st := l.Stats(); st.ShedQueue != uint64(shed) || st.QueueDelay != 50*time.Millisecond || st.QueueLength != int64(long) {
		t.Fatalf("stats = %+v, want %d shed by queue and the last reading", st, shed)
	}
	// The queue drains: the next reading admits again.
	probe.set(QueueReading{Delay: 50 * time.Millisecond, Runnable: 1})
	step()
	for range 50 {
		if why := step(); why != Admitted {
			t.Fatalf("refused (%s) after the queue drained", why)
		}
	}
}

func TestLimiter_QueueThatIsNotABacklogDoesNotShed(t *testing.T) {
	for name, r := range map[string]QueueReading{
		// Other processes hog the CPU: a long scheduling delay, but only
		// a goroutine of ours waiting. Refusing ours would not help.
		"delay without a queue of our own": {Delay: 200 * time.Millisecond, Runnable: 1},
		// Many goroutines runnable, but each runs at once.
		"queue without delay": {Delay: 10 * time.Microsecond, Runnable: long},
	} {
		clk := newFakeClock()
		probe := &probeFunc{r: r}
		l := mustNew(t, WithClock(clk.Now), WithQueueProbe(probe.read), WithQueueTarget(4, time.Millisecond))
		for range 200 {
			clk.Add(time.Millisecond)
			tok, why := l.Acquire()
			if why != Admitted {
				t.Fatalf("%s: refused (%s)", name, why)
			}
			tok.Release()
		}
	}
}

func TestRuntimeProbe_ReadsTheScheduler(t *testing.T) {
	p := RuntimeProbe()
	p()
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(time.Millisecond) }()
	}
	wg.Wait()
	r := p()
	if r.Delay < 0 || r.Runnable < 0 {
		t.Fatalf("reading %+v: negative figures", r)
	}
	if r.Delay > time.Minute {
		t.Fatalf("reading %+v: delay beyond reason", r)
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
		"shed.WithLimits":        WithLimits(10, 20, 30),
		"shed.WithTolerance":     WithTolerance(0.5),
		"shed.WithWindow":        WithWindow(0, 1),
		"shed.WithQueueTarget":   WithQueueTarget(0, time.Millisecond),
		"shed.WithMinQueueDelay": WithMinQueueDelay(-time.Second),
		"shed.WithClock":         WithClock(nil),
		"shed.WithWaitingTarget": WithWaitingTarget(0, time.Second),
	} {
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s with a bad value: %v, want an error naming it", name, err)
		}
	}
	if _, err := Middleware(mustNew(t), WithRetryAfter(0, time.Second)); err == nil || !strings.Contains(err.Error(), "shed.WithRetryAfter") {
		t.Errorf("WithRetryAfter(0, 1s): %v, want an error naming it", err)
	}
}

// Report j50a 2: a limit cut while requests waited on a hung dependency
// (200 → 25) stayed there under light traffic and refused the next normal
// burst. With the defaults (start 200, 100 ms windows of ≥ 10 requests),
// light traffic brings it back to its start within seconds, and so does a
// quiet spell; it never drifts past the start.
func TestLimiter_ACutLimitComesBackUnderLightLoadAndAfterQuiet(t *testing.T) {
	for _, quiet := range []bool{false, true} {
		clk := newFakeClock()
		l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now))
		for range 20 {
			runWindow(t, l, clk, 110*time.Millisecond)
		}
		for range 40 { // the incident: every request in flight waits 2 s
			runWindow(t, l, clk, 2*time.Second)
		}
		cut := l.Stats().Limit
		if cut > 100 {
			t.Fatalf("limit after the incident = %d, want it cut (≤ 100)", cut)
		}
		if quiet {
			// Half a second of light traffic closes the incident's last
			// window, then nothing comes for 30 s.
			for range 25 {
				tok, _ := l.Acquire()
				clk.Add(2 * time.Millisecond)
				tok.Release()
				clk.Add(18 * time.Millisecond)
			}
			clk.Add(30 * time.Second)
		}
		// Light traffic: 50 requests a second, 2 ms each, one at a time.
		var back time.Duration
		for i := range 50 * 20 {
			tok, why := l.Acquire()
			if why != Admitted {
				t.Fatalf("quiet=%v: light request %d refused (%s)", quiet, i, why)
			}
			clk.Add(2 * time.Millisecond)
			tok.Release()
			clk.Add(18 * time.Millisecond)
			if n := l.Stats().Limit; n > 200 {
				t.Fatalf("quiet=%v: limit drifted to %d, past its start 200", quiet, n)
			} else if n == 200 && back == 0 {
				back = time.Duration(i+1) * 20 * time.Millisecond
			}
		}
		t.Logf("quiet=%v: limit %d after the incident, back at 200 after %v of light traffic", quiet, cut, back)
		if back == 0 {
			t.Fatalf("quiet=%v: limit %d after 20 s of light traffic, want back at its start 200", quiet, l.Stats().Limit)
		}
		if quiet && back > time.Second {
			t.Fatalf("limit back at its start only after %v of traffic that followed 30 s of quiet, want within the first windows", back)
		}
	}
}

// The defaults docs/overload.md states: start 200, floor 10, ceiling
// 2000, windows of 100 ms and at least 10 requests.
func TestNew_DocumentedDefaults(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now))
	if n := l.Stats().Limit; n != 200 {
		t.Fatalf("initial limit %d, want 200", n)
	}
	if l.window != 100*time.Millisecond || l.minSamples != 10 {
		t.Fatalf("window %s of %d samples, want 100ms of 10", l.window, l.minSamples)
	}
	// The waiting signal reads every 10 ms and, once armed, lets go after
	// 5 s at or under its target: the longest default Retry-After.
	if c := l.wait.ctl; c.every != int64(10*time.Millisecond) || c.hold != int64(5*time.Second) {
		t.Fatalf("waiting signal read every %s, held %s; want 10ms and 5s", time.Duration(c.every), time.Duration(c.hold))
	}
	for i := 0; i < 2000 && l.Stats().Limit < 2000; i++ {
		runWindow(t, l, clk, 100*time.Millisecond)
	}
	if n := l.Stats().Limit; n != 2000 {
		t.Fatalf("limit under flat latency %d, want the ceiling 2000", n)
	}
	for range 10 {
		runWindow(t, l, clk, 100*time.Millisecond)
	}
	if n := l.Stats().Limit; n != 2000 {
		t.Fatalf("limit %d after more flat windows, want it held at the ceiling 2000", n)
	}
	// The floor, with short windows, and latency that rises 30 % every
	// window so the long-run level never catches up: the limit would
	// settle near 8 without its floor.
	clk = newFakeClock()
	l = mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithWindow(time.Millisecond, 1))
	for range 30 {
		runWindow(t, l, clk, time.Millisecond)
	}
	rtt := time.Millisecond
	for range 100 {
		rtt = rtt * 13 / 10
		runWindow(t, l, clk, rtt)
	}
	if n := l.Stats().Limit; n != 10 {
		t.Fatalf("limit after latency kept rising = %d, want the floor 10", n)
	}
}

// The shed ratio (Retry-After, warren_shed_ratio) is the share shed
// lately: an hour of quiet leaves it at zero, both as the metrics read it
// during the quiet and as the next request finds it. Before, the idle
// instance kept reporting the ratio of its last busy moment, and the
// first request after the quiet folded the last refusals of an hour ago
// in as if they were the last 100 ms: ratio 1, Retry-After 5 s for the
// next episode's first callers.
func TestLimiter_ShedRatioDecaysOverAQuietSpell(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithLimits(1, 1, 1), WithClock(clk.Now))
	held, _ := l.Acquire()
	for range 2 {
		for range 10 {
			l.Acquire() // refused
		}
		clk.Add(ratioEvery)
	}
	if r := l.ShedRatio(); r < 0.3 {
		t.Fatalf("shed ratio while shedding = %v, want well above 0", r)
	}
	for range 10 {
		l.Acquire() // refused: the last of the episode
	}
	held.Release()
	clk.Add(time.Hour)
	if r := l.Stats().ShedRatio; r > 0.01 {
		t.Fatalf("shed ratio read after an hour without requests = %v, want about 0", r)
	}
	tok, why := l.Acquire()
	if why != Admitted {
		t.Fatalf("first request after the quiet: %s", why)
	}
	defer tok.Release()
	if r := l.ShedRatio(); r > 0.01 {
		t.Fatalf("shed ratio at the first request after an hour of quiet = %v, want about 0", r)
	}
}

// A quiet spell brings a cut limit back even when the traffic after it
// comes as a burst: the spell (nothing in flight) is light time whatever
// the window it ends in does. Before, the window the spell stretched
// closed with the burst's peak in it, so it counted as one binding window
// and the spell as nothing: after 30 s of quiet the limit an incident cut
// to ~15 still held, and a burst of 100 callers was refused down to it
// window after window, where a fresh instance refuses none.
func TestLimiter_ACutLimitComesBackOverAQuietSpellEndedByABurst(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now))
	for range 20 {
		runWindow(t, l, clk, 110*time.Millisecond)
	}
	for range 40 { // the incident: every request in flight waits 2 s
		runWindow(t, l, clk, 2*time.Second)
	}
	cut := l.Stats().Limit
	if cut > 100 {
		t.Fatalf("limit after the incident = %d, want it cut (≤ 100)", cut)
	}
	clk.Add(30 * time.Second) // nothing comes
	// The burst: 100 callers, each calling again as soon as answered
	// (5 ms), for 300 ms.
	refused := make([]int, 0, 60)
	for range 60 {
		var toks []Token
		n := 0
		for range 100 {
			tok, why := l.Acquire()
			if why != Admitted {
				n++
				continue
			}
			toks = append(toks, tok)
		}
		clk.Add(5 * time.Millisecond)
		for _, tok := range toks {
			tok.Release()
		}
		refused = append(refused, n)
	}
	late := 0
	for _, n := range refused[30:] { // from 150 ms on, past the first window
		late += n
	}
	if late > 0 {
		t.Fatalf("limit cut to %d, 30 s of quiet, then a burst of 100: %d refused after its first window (limit %d; refusals per 5 ms: %v), want none", cut, late, l.Stats().Limit, refused)
	}
}
