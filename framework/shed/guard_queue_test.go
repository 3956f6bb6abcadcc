package shed

import (
	"runtime"
	"testing"
	"time"
)

// docs/overload.md, "The CPU run queue" and Settings: with the queue
// signal on and its defaults (WithQueueTarget 8, 1 ms; WithMinQueueDelay
// 1 ms), requests are refused while more than 8 goroutines per CPU wait to
// run and wait at least 1 ms — not at 8, not while they wait less. The
// probe is read at most once per 1 ms of the limiter's clock.
func TestGuard_QueueSignalDefaultsAreEightPerCPUAndOneMillisecond(t *testing.T) {
	target := 8 * runtime.GOMAXPROCS(0)
	cases := []struct {
		name     string
		r        QueueReading
		wantShed bool
	}{
		{"at the target", QueueReading{Runnable: target, Delay: 50 * time.Millisecond}, false},
		{"one past the target", QueueReading{Runnable: target + 1, Delay: 50 * time.Millisecond}, true},
		{"past the target, waiting under 1 ms", QueueReading{Runnable: 100 * target, Delay: 500 * time.Microsecond}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			probe := &probeFunc{}
			probe.set(tc.r)
			l := mustNew(t, WithClock(clk.Now), WithQueueProbe(probe.read))
			shed := 0
			for range 200 {
				clk.Add(time.Millisecond) // one reading per request
				tok, why := l.Acquire()
				tok.Release()
				if why == ReasonQueue {
					shed++
				}
			}
			if got := shed > 150; got != tc.wantShed {
				t.Fatalf("%d of 200 requests refused for the run queue (%+v, target %d per %d CPUs), want shedding %v",
					shed, tc.r, 8, runtime.GOMAXPROCS(0), tc.wantShed)
			}
			if !tc.wantShed && shed != 0 {
				t.Fatalf("%d requests refused, want none", shed)
			}
		})
	}
	// Read at most once per millisecond: within one, a changed queue is
	// not seen.
	clk := newFakeClock()
	probe := &probeFunc{}
	l := mustNew(t, WithClock(clk.Now), WithQueueProbe(probe.read))
	clk.Add(time.Millisecond)
	tok, _ := l.Acquire()
	tok.Release()
	probe.set(QueueReading{Runnable: 100 * target, Delay: 50 * time.Millisecond})
	clk.Add(500 * time.Microsecond)
	for range 20 {
		tok, why := l.Acquire()
		tok.Release()
		if why == ReasonQueue {
			t.Fatal("the queue was read again within 1 ms of the last reading")
		}
	}
	clk.Add(600 * time.Microsecond)
	if tok, why := l.Acquire(); why != ReasonQueue {
		tok.Release()
		t.Fatalf("after 1 ms a long queue waiting 50 ms was not read: %s", why)
	}
}
