package main

import (
	"slices"
	"time"
)

// percentile returns the p-th percentile (0..100) of ds by nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	idx := int(float64(len(s))*p/100+0.5) - 1
	idx = max(0, min(idx, len(s)-1))
	return s[idx]
}

// ms converts a duration to float milliseconds for a row.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
