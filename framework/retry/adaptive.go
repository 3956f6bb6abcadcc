package retry

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Adaptive per-attempt deadline defaults: a retryable attempt is abandoned
// after DefaultAdaptiveMultiple × the p99 of the attempts the policy saw in
// the last 10–20 s, never sooner than DefaultAdaptiveFloor and never later
// than DefaultAdaptiveCap. Until DefaultAdaptiveMinSamples attempts have
// been seen the cap applies.
//
// The floor is well above a healthy service's p99 on purpose: a loaded
// machine stalls a process for 100 ms and more (other processes take the
// CPU), and a deadline learnt on a quiet minute would cut every attempt
// of such a stall on every instance at once — turning a slow moment into
// failed calls. 250 ms still cuts a hung instance off and, with two
// timeouts ejecting, takes it out within about half a second.
const (
	DefaultAdaptiveFloor      = 250 * time.Millisecond
	DefaultAdaptiveCap        = 2 * time.Second
	DefaultAdaptiveMultiple   = 4.0
	DefaultAdaptiveMinSamples = 20
)

// adaptiveWindow is how long one histogram window lasts; the p99 is read
// over the current and the previous window, so it forgets a latency level
// within two windows.
const adaptiveWindow = 10 * time.Second

// adaptiveRefresh is how often the deadline is recomputed from the
// histogram; between refreshes an attempt reads one atomic.
const adaptiveRefresh = 50 * time.Millisecond

// latency bucket i holds samples in [bucketBase·growth^i, ·growth^(i+1)):
// 64 buckets of 25 % from 10 µs reach past a minute.
const (
	bucketCount = 64
	bucketBase  = 10 * time.Microsecond
	growth      = 1.25
)

var logGrowth = math.Log(growth)

func bucketOf(d time.Duration) int {
	if d < bucketBase {
		return 0
	}
	return min(int(math.Log(float64(d)/float64(bucketBase))/logGrowth), bucketCount-1)
}

// bucketTop is the upper edge of bucket i: reading a quantile as the top
// of its bucket errs towards a longer deadline, never a shorter one.
func bucketTop(i int) time.Duration {
	return time.Duration(float64(bucketBase) * math.Pow(growth, float64(i+1)))
}

type window struct {
	counts [bucketCount]atomic.Uint32
}

func (w *window) reset() {
	for i := range w.counts {
		w.counts[i].Store(0)
	}
}

// adaptive tracks attempt latencies in two rotating log-scale histograms
// and derives the per-attempt deadline from their p99. Recording is one
// atomic add; the deadline is recomputed at most every adaptiveRefresh.
type adaptive struct {
	floor, cap time.Duration
	multiple   float64
	minSamples uint32
	now        func() time.Time

	mu       sync.Mutex // rotation and recomputation
	windows  [2]window
	cur      atomic.Int32 // index of the window being written
	rotated  time.Time    // when cur became current
	computed atomic.Int64 // unix nanos of the last recomputation
	deadline atomic.Int64 // nanoseconds
	p99      atomic.Int64 // nanoseconds; 0 until minSamples have been seen
}

func newAdaptive(floor, cap time.Duration, multiple float64, now func() time.Time) *adaptive {
	a := &adaptive{floor: floor, cap: cap, multiple: multiple, minSamples: DefaultAdaptiveMinSamples, now: now}
	a.rotated = now()
	a.deadline.Store(int64(cap))
	return a
}

// observe records one attempt's duration: an answer, or a deadline that
// ran out (the deadline itself, so a service that slows down as a whole
// raises its own p99 and with it the deadline).
func (a *adaptive) observe(d time.Duration) {
	w := &a.windows[a.cur.Load()]
	w.counts[bucketOf(d)].Add(1)
}

// timeout returns the current per-attempt deadline.
func (a *adaptive) timeout() time.Duration {
	a.refresh()
	return time.Duration(a.deadline.Load())
}

// latencyP99 returns the p99 of the attempts seen, 0 until enough have been.
func (a *adaptive) latencyP99() time.Duration {
	a.refresh()
	return time.Duration(a.p99.Load())
}

// refresh recomputes the deadline when the last computation is stale and
// no other caller is at it.
func (a *adaptive) refresh() {
	now := a.now()
	if now.UnixNano()-a.computed.Load() >= int64(adaptiveRefresh) && a.mu.TryLock() {
		a.recompute(now)
		a.mu.Unlock()
	}
}

// recompute rotates the windows when due and sets the deadline from the
// p99 of both. Called with mu held.
func (a *adaptive) recompute(now time.Time) {
	a.computed.Store(now.UnixNano())
	if since := now.Sub(a.rotated); since >= adaptiveWindow {
		next := 1 - a.cur.Load()
		a.windows[next].reset()
		if since >= 2*adaptiveWindow {
			// Rotations are taken only when attempts come: after a quiet
			// spell of two windows or more, the window being written
			// holds samples older than the last 10–20 s too, and an
			// incident's level would set the deadline (and the hedge
			// delay) of the first attempts after it.
			a.windows[1-next].reset()
		}
		a.cur.Store(next)
		a.rotated = now
	}
	var counts [bucketCount]uint64
	var total uint64
	for i := range a.windows {
		for j := range counts {
			c := uint64(a.windows[i].counts[j].Load())
			counts[j] += c
			total += c
		}
	}
	if total < uint64(a.minSamples) {
		a.deadline.Store(int64(a.cap))
		a.p99.Store(0)
		return
	}
	rank := total - total/100 // samples at or below the p99
	var seen uint64
	p99 := bucketTop(bucketCount - 1)
	for i, c := range counts {
		if seen += c; seen >= rank {
			p99 = bucketTop(i)
			break
		}
	}
	a.p99.Store(int64(p99))
	d := time.Duration(float64(p99) * a.multiple)
	a.deadline.Store(int64(min(max(d, a.floor), a.cap)))
}
