package shed

import (
	"math"
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
// request, like the PIE queue manager (RFC 8033) but on the length of the
// process's run queue: while more goroutines wait to run than the target
// (and they wait long enough to matter), the probability rises in
// proportion to the excess; once the queue is under half the target it
// falls again, more slowly, so the callers it turned away can come back
// without a stampede.
//
// Length, not delay, is the target because the delay also grows when
// other processes take the CPU, and refusing this process's requests does
// not shorten that; the length is this process's own backlog, which
// refusing does shorten. Admitted latency then stays within a small
// multiple of what the same machine gives a lightly loaded server.
type queueControl struct {
	target   float64 // runnable goroutines
	minDelay time.Duration
	maxDrop  float64
	up, down float64

	runnable float64 // EWMA of Runnable
	p        float64
}

func newQueueControl(target int, minDelay time.Duration, maxDrop float64) queueControl {
	return queueControl{target: float64(target), minDelay: minDelay, maxDrop: maxDrop, up: 0.02, down: 0.01}
}

// update folds one reading in and returns the drop probability. steps is
// how many intervals the reading covers (more than one after a quiet
// spell); relaxing goes that many steps at once.
func (q *queueControl) update(r QueueReading, steps float64) float64 {
	q.runnable = 0.5*q.runnable + 0.5*float64(r.Runnable)
	switch {
	case q.runnable > q.target && r.Delay >= q.minDelay:
		over := math.Min(q.runnable/q.target, 5)
		q.p = math.Min(q.maxDrop, q.p+q.up*over)
	case q.runnable <= q.target/2 || r.Delay < q.minDelay/2:
		q.p = math.Max(0, q.p-q.down*max(steps, 1))
	}
	return q.p
}
