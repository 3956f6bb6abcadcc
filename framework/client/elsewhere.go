package client

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/warren-mesh/warren/framework/balancer"
)

// failedOn is the instances the attempts of one call failed on. Balancers
// avoid only the previous attempt's instance; with several dead instances
// still listed (a registry outage hides their withdrawals, and the
// ejection cap keeps some in rotation) a call's retries bounced between
// them — #1 on one, #2 on another, #3 on the first again — while healthy
// instances stood by (report j53b 1). A call makes a few attempts, so a
// slice under a mutex (hedges run beside the attempt they hedge) is
// enough.
type failedOn struct {
	mu sync.Mutex
	ts []*balancer.Target
}

func (f *failedOn) add(t *balancer.Target) {
	f.mu.Lock()
	if !slices.Contains(f.ts, t) {
		f.ts = append(f.ts, t)
	}
	f.mu.Unlock()
}

func (f *failedOn) has(t *balancer.Target) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.ts, t)
}

// elsewhere returns t, or, when an earlier attempt of the call failed on
// t, an instance it has not failed on that may take traffic: first the
// balancer's own choice avoiding t (zone, hash ring and load still
// count), then any such instance of the set, from a random start. Only
// when every instance that may take traffic failed this call already
// does it return t.
func (c *Client) elsewhere(ctx context.Context, f *failedOn, t *balancer.Target) *balancer.Target {
	if f == nil || !f.has(t) {
		return t
	}
	if u, err := c.bal.Pick(ctx, t); err == nil && u != t && !f.has(u) {
		return u
	}
	ts := c.ep.Targets()
	if len(ts) == 0 {
		return t
	}
	start := rand.IntN(len(ts))
	for i := range ts {
		u := ts[(start+i)%len(ts)]
		// Ejected first: Allow claims a half-open probe, so it is asked
		// only of the instance returned.
		if u != t && !u.Ejected() && !f.has(u) && u.Allow() {
			return u
		}
	}
	return t
}
