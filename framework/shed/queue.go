package shed

import (
	"math"
	"runtime"
	"runtime/metrics"
	"time"
)

// QueueReading is one look at the process's CPU run queue.
type QueueReading struct {
	// Delay is how long goroutines waited to run since the previous
	// reading (the 90th percentile of the runtime's scheduling latencies).
	// Every request is a goroutine that becomes runnable when its bytes
	// arrive, so for a CPU-bound server this is the request's queueing
	// delay: the part of latency that grows with load.
	Delay time.Duration
	// Runnable is the number of goroutines waiting to run now.
	Runnable int
}

// QueueProbe returns the current QueueReading. Each call covers the time
// since the previous call. The limiter calls it from one goroutine at a
// time.
type QueueProbe func() QueueReading

// RuntimeProbe returns a QueueProbe that reads the Go runtime's scheduler
// metrics (runtime/metrics: /sched/latencies:seconds and
// /sched/goroutines/runnable:goroutines). A reading costs a few
// microseconds.
func RuntimeProbe() QueueProbe {
	s := []metrics.Sample{
		{Name: "/sched/latencies:seconds"},
		{Name: "/sched/goroutines/runnable:goroutines"},
	}
	var prev []uint64
	return func() QueueReading {
		metrics.Read(s)
		var r QueueReading
		if s[1].Value.Kind() == metrics.KindUint64 {
			r.Runnable = int(min(s[1].Value.Uint64(), math.MaxInt32))
		}
		if s[0].Value.Kind() != metrics.KindFloat64Histogram {
			return r
		}
		h := s[0].Value.Float64Histogram()
		if len(prev) != len(h.Counts) {
			prev = make([]uint64, len(h.Counts))
			copy(prev, h.Counts)
			return r
		}
		var total uint64
		for i, c := range h.Counts {
			total += c - prev[i]
		}
		if total > 0 {
			var acc uint64
			for i, c := range h.Counts {
				acc += c - prev[i]
				if acc*10 >= total*9 {
					// The bucket's upper bound; the last one is +Inf.
					up := h.Buckets[i+1]
					if math.IsInf(up, 1) {
						up = h.Buckets[i]
					}
					r.Delay = time.Duration(up * float64(time.Second))
					break
				}
			}
		}
		copy(prev, h.Counts)
		return r
	}
}

// queueControl turns queue readings into a probability of refusing a
// request, like the PIE queue manager (RFC 8033): while the queueing delay
// stays above target and the queue is the process's own (enough goroutines
// waiting), the probability rises in proportion to how far above; once the
// delay is back under half the target it falls again, more slowly, so the
// callers it turned away can come back without a stampede.
//
// Requiring a queue of our own keeps an idle instance on a busy machine
// (other processes taking the CPU) from refusing the little work it gets.
type queueControl struct {
	target      time.Duration
	minRunnable float64
	maxDrop     float64
	up, down    float64

	runnable float64 // EWMA of Runnable
	p        float64
}

func newQueueControl(target time.Duration, minRunnable int, maxDrop float64) queueControl {
	if minRunnable <= 0 {
		minRunnable = 4 * runtime.GOMAXPROCS(0)
	}
	return queueControl{target: target, minRunnable: float64(minRunnable), maxDrop: maxDrop, up: 0.02, down: 0.01}
}

// update folds one reading in and returns the drop probability. steps is
// how many intervals the reading covers (more than one after a quiet
// spell); relaxing goes that many steps at once.
func (q *queueControl) update(r QueueReading, steps float64) float64 {
	q.runnable = 0.7*q.runnable + 0.3*float64(r.Runnable)
	switch {
	case r.Delay > q.target && q.runnable >= q.minRunnable:
		over := math.Min(float64(r.Delay)/float64(q.target), 5)
		q.p = math.Min(q.maxDrop, q.p+q.up*over)
	case r.Delay <= q.target/2 || q.runnable < q.minRunnable:
		q.p = math.Max(0, q.p-q.down*max(steps, 1))
	}
	return q.p
}
