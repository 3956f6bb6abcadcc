package shed

import (
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A Limiter with a logger says at once that it started shedding, then at
// most one line per interval while refusals go on, and once more, with
// the count, when it admits again; a quiet spell later the next refusal
// is announced at once again. Without a logger it says nothing.
func TestLog_FirstRefusalAtOnceThenOneLinePerInterval(t *testing.T) {
	const every = 10 * time.Second
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var out syncbuf.Buffer
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1), WithClock(clk.Now), WithLogger(log.NewLogfmtLogger(&out), every))
	lines := func() int { return strings.Count(out.String(), "\n") }

	held, why := l.Acquire()
	if why != Admitted {
		t.Fatalf("first request refused: %s", why)
	}
	for range 100 {
		if _, why := l.Acquire(); why != ReasonLimit {
			t.Fatalf("refusal %s, want %s", why, ReasonLimit)
		}
	}
	if lines() != 1 || !strings.Contains(out.String(), `level=warn msg="shedding load: refusing requests the instance cannot serve in time (503 overloaded)" reason=limit limit=1 in_flight=1`) {
		t.Fatalf("after 100 refusals in one instant, want one line announcing them:\n%s", out.String())
	}

	clk.Add(every)
	l.Acquire() // refused: the interval's line, with the 99 it did not log one by one and this one
	if lines() != 2 || !strings.Contains(out.String(), `msg="still shedding load" refused=100 over=10s refused_limit=100 limit=1 in_flight=1`) {
		t.Fatalf("want one summary line per interval:\n%s", out.String())
	}
	for range 5 {
		l.Acquire()
	}
	held.Release()
	clk.Add(every)
	tok, why := l.Acquire()
	if why != Admitted {
		t.Fatalf("refused once the held request was released: %s", why)
	}
	tok.Release()
	if lines() != 3 || !strings.Contains(out.String(), `msg="shed load" refused=5 over=10s refused_limit=5`) {
		t.Fatalf("want the last refusals said when requests are admitted again:\n%s", out.String())
	}
	for range 10 { // admitted, nothing pending: nothing more to say
		tok, _ := l.Acquire()
		tok.Release()
	}

	clk.Add(3 * every)
	held, _ = l.Acquire()
	l.Acquire()
	if lines() != 4 || strings.Count(out.String(), "shedding load: refusing") != 2 {
		t.Fatalf("after a quiet spell the next refusal is announced at once:\n%s", out.String())
	}
	held.Release()

	quiet := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1), WithClock(clk.Now))
	quiet.Acquire()
	if _, why := quiet.Acquire(); why != ReasonLimit {
		t.Fatal("the limiter without a logger admitted past its limit")
	}
}

// Refusals an episode ended with, and that no line told yet, are told as
// that episode's — with when they ended — and the next episode, after a
// quiet spell, is announced at once as its own. Before, the leftover of
// the first was summarised at the second's first request ("shed load …
// over=1h0m0s" as the second began, which then went unannounced for an
// interval), or, if the second began with a refusal, as "still shedding
// load" over an hour, the count of both together.
func TestLog_TheNextEpisodeIsNotTheLeftoverOfThePrevious(t *testing.T) {
	const every = 10 * time.Second
	for _, beginsAdmitted := range []bool{true, false} {
		clk := &fakeClock{t: time.Unix(1_000_000, 0)}
		var out syncbuf.Buffer
		l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1), WithClock(clk.Now), WithLogger(log.NewLogfmtLogger(&out), every))
		held, _ := l.Acquire()
		for range 100 {
			l.Acquire()
		}
		clk.Add(every)
		for range 6 { // the interval's line, then 5 refusals no line tells
			l.Acquire()
		}
		if n := strings.Count(out.String(), "\n"); n != 2 {
			t.Fatalf("episode one: %d lines, want 2:\n%s", n, out.String())
		}
		ended := clk.Now()
		if beginsAdmitted {
			held.Release()
		}
		clk.Add(time.Hour) // quiet: no requests at all

		if beginsAdmitted {
			held, _ = l.Acquire() // episode two: admitted, then refused
		}
		l.Acquire()
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 4 {
			t.Fatalf("begins admitted %v: %d lines, want the leftover's and the announcement of episode two:\n%s", beginsAdmitted, len(lines), out.String())
		}
		if !strings.Contains(lines[2], `msg="shed load" refused=5 `) || !strings.Contains(lines[2], "until="+ended.UTC().Format(time.RFC3339)) {
			t.Fatalf("begins admitted %v: third line %q, want the 5 left over from episode one, until it ended (%s)", beginsAdmitted, lines[2], ended.UTC().Format(time.RFC3339))
		}
		if !strings.Contains(lines[3], `msg="shedding load: refusing requests`) {
			t.Fatalf("begins admitted %v: fourth line %q, want episode two announced", beginsAdmitted, lines[3])
		}
		held.Release()
	}
}
