package shed

import (
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// observability.md (log table) and oncall.md (p99 up): while shedding,
// the instance writes at most a line per 10 s. WithLogger's every ≤ 0 is
// that default; the log tests pass their own interval, so a changed
// DefaultLogEvery passed them.
func TestLog_DefaultIntervalIsTenSeconds(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	var out syncbuf.Buffer
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1), WithClock(clk.Now), WithLogger(log.NewLogfmtLogger(&out), 0))
	lines := func() int { return strings.Count(out.String(), "\n") }
	held, why := l.Acquire()
	if why != Admitted {
		t.Fatalf("first request refused: %s", why)
	}
	defer held.Release()
	l.Acquire() // the first refusal: announced at once
	if lines() != 1 {
		t.Fatalf("after the first refusal, want its line:\n%s", out.String())
	}
	for range 99 { // refusals through 9.9 s: no line
		clk.Add(100 * time.Millisecond)
		l.Acquire()
	}
	if lines() != 1 {
		t.Fatalf("a line before 10 s of shedding had passed:\n%s", out.String())
	}
	clk.Add(100 * time.Millisecond)
	l.Acquire()
	if lines() != 2 || !strings.Contains(out.String(), `msg="still shedding load" refused=100 over=10s`) {
		t.Fatalf("at 10 s, want the interval's line:\n%s", out.String())
	}
}
