package climit

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/warren-mesh/warren/internal/gradient"
)

// WithLatency makes the limit follow the round trip of successful calls,
// for services whose queue the server cannot see, by the same Gradient2
// rule as the server's in-flight limit (package shed): every window (at
// least 100ms and 10 calls) the mean round trip is compared with a slow
// average of past windows; while it stays within tolerance × that
// average the limit grows (by a fifth of max(4, √limit) a window), past
// it the limit shrinks in proportion (at most a tenth a window). Windows
// in which fewer than half the limit were in flight leave it alone.
// Successes no longer raise the limit one by one; overload answers and
// timeouts still cut it (WithBackoff).
//
// Start the limit low (WithLimits): the long-run round trip is learnt
// from the first windows, which should not already be queued.
func WithLatency(tolerance float64) Option {
	return func(s *settings) error {
		if !(tolerance > 1) {
			return fmt.Errorf("climit.WithLatency(%v): want a tolerance above 1", tolerance)
		}
		s.latency = &latencySettings{tolerance: tolerance, window: 100 * time.Millisecond, minSamples: 10}
		return nil
	}
}

type latencySettings struct {
	tolerance  float64
	window     time.Duration
	minSamples int64
}

// latency is the round-trip signal's state.
type latency struct {
	latencySettings
	sum, count atomic.Int64 // ns of round trips and calls in the window
	peak       atomic.Int64 // most calls in flight in the window
	start      atomic.Int64 // unix ns the window began
	closing    atomic.Bool  // a Release is closing the window
	idleFrom   atomic.Int64 // unix ns no call was in flight from; 0: in use
	idle       atomic.Int64 // ns of the window with no call in flight

	grad gradient.Limit // under Limiter.mu
}

func newLatency(s latencySettings, initial, min, max int, now time.Time) *latency {
	l := &latency{latencySettings: s, grad: gradient.NewLowest(initial, min, max, s.tolerance)}
	l.start.Store(now.UnixNano())
	l.idleFrom.Store(now.UnixNano())
	return l
}

// busy notes that the call at now is the only one in flight: the time
// since the last one ended was idle (see sample).
func (l *latency) busy(now int64) {
	if from := l.idleFrom.Swap(0); from > 0 {
		l.idle.Add(max(0, now-from))
	}
}

// idleAt notes that the last call in flight ended at now.
func (l *latency) idleAt(now int64, inflight *atomic.Int64) {
	l.idleFrom.Store(now)
	if inflight.Load() != 0 {
		// A call came in between: it found no idle start to take, and
		// none began.
		l.idleFrom.CompareAndSwap(now, 0)
	}
}

// peakAt notes n calls in flight.
func (l *latency) peakAt(n int64) {
	for {
		p := l.peak.Load()
		if n <= p || l.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// sample records one successful call's round trip and, when the window is
// due, adapts the limit.
func (l *Limiter) sample(now, start time.Time) {
	w := l.lat
	w.sum.Add(int64(now.Sub(start)))
	c := w.count.Add(1)
	begun := w.start.Load()
	if now.UnixNano()-begun < int64(w.window) || c < w.minSamples || !w.closing.CompareAndSwap(false, true) {
		return
	}
	defer w.closing.Store(false)
	if w.start.Load() != begun {
		return
	}
	cnt, sum := w.count.Swap(0), w.sum.Swap(0)
	peak := w.peak.Swap(l.inflight.Load())
	idle := w.idle.Swap(0)
	w.start.Store(now.UnixNano())
	if cnt <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	// A window a quiet spell stretched counts as the windows it spans
	// (gradient.Limit.UpdateSpan: a cut limit drifts back up).
	avg := time.Duration(sum / cnt)
	spans := int(min(now.UnixNano()-begun, int64(1<<40)) / int64(w.window))
	if idleSpans := int(min(idle, int64(1<<40)) / int64(w.window)); idleSpans > 0 && 2*peak >= l.limit.Load() {
		// The spell ended in a burst that used the limit: the window is
		// the burst's, but the time with no call in flight before it
		// was light all the same. Without this, 30 s of quiet counted
		// as nothing and the burst met the limit an incident had cut.
		w.grad.UpdateSpan(avg, 0, idleSpans)
		spans = 1
	}
	l.est = w.grad.UpdateSpan(avg, peak, spans)
	l.limit.Store(max(1, int64(l.est)))
}
