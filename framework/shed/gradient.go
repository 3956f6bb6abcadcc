package shed

import (
	"math"
	"time"
)

// gradient is the in-flight limit, adapted the way Netflix's
// concurrency-limits Gradient2 does it: each window's average latency
// (short) is compared with a slow average of past windows (long); while
// short stays within tolerance × long the limit grows by a small queue
// allowance, past it the limit shrinks in proportion. A long average that
// has risen far above the short one is pulled down, so a spell of slow
// windows does not make slowness the new normal for long.
//
// It is not safe for concurrent use; Limiter serialises it.
type gradient struct {
	min, max  float64
	tolerance float64
	smoothing float64
	longN     float64 // windows in the long average

	limit   float64
	long    float64 // nanoseconds; 0 until the first window
	windows int
}

func newGradient(initial, min, max int, tolerance float64) gradient {
	return gradient{
		min: float64(min), max: float64(max),
		tolerance: tolerance,
		smoothing: 0.2,
		longN:     300,
		limit:     float64(initial),
	}
}

// update folds one window in: avg is its mean latency, peak the most
// requests that were in flight during it. It returns the new limit.
func (g *gradient) update(avg time.Duration, peak int64) float64 {
	short := float64(avg)
	if short <= 0 {
		short = 1
	}
	g.windows++
	switch {
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
		return g.limit
	}
	grad := math.Max(0.5, math.Min(1, g.tolerance*g.long/short))
	next := g.limit*grad + math.Max(4, math.Sqrt(g.limit))
	next = g.limit*(1-g.smoothing) + next*g.smoothing
	g.limit = math.Max(g.min, math.Min(g.max, next))
	return g.limit
}
