package meshview

import (
	"fmt"
	"slices"
)

// A bad deploy — one instance with an empty data directory or a wrong
// setting — answers 404 where its siblings answer 200: no 5xx, so an
// error ratio shows it green, and its fast answers draw the most traffic
// (report j57b F1). The instances of one service serve the same callers
// through the same balancer, so their shares of 4xx answers should be
// alike; one far above the rest is flagged.
const (
	// differMargin is how far (a share, 0.10 = 10 percentage points) an
	// instance's 4xx share must stand above the median of its siblings'.
	differMargin = 0.10
	// differMinRequests is how many answers in the window an instance
	// needs to be judged, or to count as a sibling: a share of a handful
	// of requests is noise.
	differMinRequests = 20
)

// flagDiffering sets Differs on each instance of one service whose 4xx
// share is more than differMargin above the median share of its siblings
// with enough traffic. A share below the siblings' is not flagged: then
// the siblings are the ones flagged, if they stand apart.
func flagDiffering(insts []Instance) {
	judged := func(i Instance) bool { return i.Traffic != nil && i.Traffic.requests >= differMinRequests }
	for k := range insts {
		if !judged(insts[k]) {
			continue
		}
		var sib []float64
		for j, o := range insts {
			if j != k && judged(o) {
				sib = append(sib, o.Traffic.ClientErrorRatio)
			}
		}
		if len(sib) == 0 {
			continue
		}
		share, med := insts[k].Traffic.ClientErrorRatio, median(sib)
		if share-med > differMargin {
			insts[k].Differs = fmt.Sprintf("%.0f %% of its answers are 4xx, its siblings' median %.0f %%: check its data and settings (a bad deploy)", share*100, med*100)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
