// Package gradient is an adaptive concurrency limit, adapted the way
// Netflix's concurrency-limits Gradient2 does it. The server's in-flight
// limit (framework/shed) and the client's round-trip limit
// (framework/climit) both use it.
package gradient

import (
	"math"
	"time"
)

// Limit is a concurrency limit, adapted the way Netflix's
// concurrency-limits Gradient2 does it: each window's average latency
// (short) is compared with a slow average of past windows (long); while
// short stays within tolerance × long the limit grows by a small queue
// allowance, past it the limit shrinks in proportion. A long average that
// has risen far above the short one is pulled down, so a spell of slow
// windows does not make slowness the new normal for long.
//
// With a lowest-latency baseline (NewLowest) the long-run level is instead
// the latency of the service with nothing queued: the lowest window seen,
// moved up only by windows in which the limit held nothing back (fewer
// than half of it in flight). A limit that runs in the queue for a long
// while then never learns the queue as its new normal, which the average
// does (Gradient2 drifts up under a sustained overload); a service that
// became slower for good is relearnt once the overload ends.
//
// A limit learnt in an incident does not stay for good: after
// RecoverAfter light windows in a row (fewer than half of the limit in
// flight: the limit held nothing back), each further light window moves
// it a tenth of the way (at least 1) back up towards its initial value,
// never past it (report j50a 2: a limit cut from 200 to 25 while a
// dependency hung refused the next normal burst minutes later). A limit
// that binds (half of it or more in flight) is left to the latency rule.
//
// It is not safe for concurrent use; its owner serialises it.
type Limit struct {
	min, max  float64
	tolerance float64
	smoothing float64
	longN     float64 // windows in the long average
	lowest    bool    // the baseline is the lowest window, not the average

	limit   float64
	initial float64
	long    float64 // nanoseconds; 0 until the first window
	windows int
	light   int // light windows in a row
}

// RecoverAfter is how many light windows in a row (2 s of the callers'
// 100 ms windows) come before the limit drifts back towards its initial
// value.
const RecoverAfter = 20

// New returns a Limit that starts at initial and stays within [min, max];
// latency may reach tolerance × its long-run level before it shrinks.
func New(initial, min, max int, tolerance float64) Limit {
	return Limit{
		min: float64(min), max: float64(max),
		tolerance: tolerance,
		smoothing: 0.2,
		longN:     300,
		limit:     float64(initial),
		initial:   float64(initial),
	}
}

// NewLowest is New with the lowest-window baseline.
func NewLowest(initial, min, max int, tolerance float64) Limit {
	g := New(initial, min, max, tolerance)
	g.lowest = true
	return g
}

// Update folds one window in: avg is its mean latency, peak the most
// requests that were in flight during it. It returns the new limit.
func (g *Limit) Update(avg time.Duration, peak int64) float64 {
	return g.UpdateSpan(avg, peak, 1)
}

// UpdateSpan is Update for a window that lasted spans windows' time (a
// quiet spell stretches a window that closes after a number of samples):
// if it was light, it counts as that many light windows.
func (g *Limit) UpdateSpan(avg time.Duration, peak int64, spans int) float64 {
	short := float64(avg)
	if short <= 0 {
		short = 1
	}
	g.windows++
	switch {
	case g.lowest:
		if g.long == 0 || short < g.long {
			g.long = short
		} else if float64(peak) < g.limit/2 {
			g.long += (short - g.long) / 10
		}
	case g.long == 0:
		g.long = short
	case g.windows <= 10:
		// Warm-up: a plain mean of the first windows.
		g.long += (short - g.long) / float64(g.windows)
	default:
		g.long += (short - g.long) * 2 / (g.longN + 1)
	}
	if g.long/short > 2 {
		// Latency fell well below the remembered level (a slow spell
		// ended): forget the slow spell faster.
		g.long *= 0.95
	}
	if float64(peak) < g.limit/2 {
		// The limit was not what held the requests back; latency in this
		// window says nothing about whether a different limit would do.
		// A long run of such windows lets it drift back up.
		for range max(1, min(spans, 1000)) {
			if g.light < RecoverAfter {
				g.light++
				continue
			}
			if g.limit >= g.initial {
				break
			}
			g.limit = math.Min(g.initial, g.limit+math.Max(1, (g.initial-g.limit)/10))
		}
		return g.limit
	}
	g.light = 0
	grad := math.Max(0.5, math.Min(1, g.tolerance*g.long/short))
	next := g.limit*grad + math.Max(4, math.Sqrt(g.limit))
	next = g.limit*(1-g.smoothing) + next*g.smoothing
	g.limit = math.Max(g.min, math.Min(g.max, next))
	return g.limit
}

// Cut multiplies the limit by f (within its bounds), for a signal other
// than latency (a caller told "overloaded"), and returns the new limit.
func (g *Limit) Cut(f float64) float64 {
	g.light = 0
	g.limit = math.Max(g.min, math.Min(g.max, g.limit*f))
	return g.limit
}
