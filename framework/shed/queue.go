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

// queueControl decides from queue readings whether the run queue is a
// backlog worth refusing work for: more goroutines waiting to run than the
// target, while they wait long enough to matter (a smoothed scheduling
// delay of at least minDelay). It is a threshold, not a probability: a
// request that arrives while the queue is short is always admitted, so the
// instance never turns work away while it has room, and one that arrives
// into a backlog is always refused, so a burst is cut at the target.
//
// Length, not delay, is the target because the delay also grows when
// other processes take the CPU. The length is not proof of a backlog of
// our own either: a process the OS leaves waiting finds every request that
// arrived meanwhile runnable at once. That is why the signal is off by
// default (WithQueueProbe).
type queueControl struct {
	target   int // runnable goroutines
	minDelay time.Duration

	delay float64 // EWMA of Delay, ns
}

func newQueueControl(target int, minDelay time.Duration) queueControl {
	return queueControl{target: target, minDelay: minDelay}
}

// update folds one reading in and reports whether the queue is a backlog.
func (q *queueControl) update(r QueueReading) bool {
	q.delay = 0.9*q.delay + 0.1*float64(r.Delay)
	return r.Runnable > q.target && q.delay >= float64(q.minDelay)
}
