package balancer

import (
	"context"
	"sync/atomic"
)

// ZoneAware keeps traffic in the caller's zone: while at least MinHealthy
// local instances are in rotation it picks among them only; below that it
// spills over the whole set. Inside each group another balancer (round
// robin by default) does the picking.
type ZoneAware struct {
	zone       string
	minHealthy int
	local, all Balancer
	locals     atomic.Pointer[[]*Target]
	remote     atomic.Bool
}

// ZoneOption configures ZoneAware.
type ZoneOption func(*ZoneAware)

// MinHealthy sets how many local instances must be in rotation to keep
// traffic local (default 1).
func MinHealthy(n int) ZoneOption {
	return func(z *ZoneAware) {
		if n > 0 {
			z.minHealthy = n
		}
	}
}

// Within sets the balancer constructor used inside each group (default
// NewRoundRobin). It is called twice: once for local, once for all.
func Within(newBalancer func() Balancer) ZoneOption {
	return func(z *ZoneAware) { z.local, z.all = newBalancer(), newBalancer() }
}

// NewZoneAware returns a zone-aware balancer for a caller in zone.
func NewZoneAware(zone string, opts ...ZoneOption) *ZoneAware {
	z := &ZoneAware{zone: zone, minHealthy: 1}
	for _, o := range opts {
		o(z)
	}
	if z.local == nil {
		z.local, z.all = NewRoundRobin(), NewRoundRobin()
	}
	return z
}

// Update implements Balancer.
func (z *ZoneAware) Update(ts []*Target) {
	var local []*Target
	for _, t := range ts {
		if t.Instance.Zone == z.zone {
			local = append(local, t)
		}
	}
	z.local.Update(local)
	z.all.Update(ts)
	z.locals.Store(&local)
	z.remote.Store(len(local) < len(ts))
}

// Pick implements Balancer.
func (z *ZoneAware) Pick(ctx context.Context, avoid *Target) (*Target, error) {
	healthy := 0
	if p := z.locals.Load(); p != nil {
		for _, t := range *p {
			if !t.Ejected() {
				healthy++
			}
		}
	}
	if healthy >= z.minHealthy {
		t, err := z.local.Pick(ctx, avoid)
		// A retry after the only healthy local instance failed goes
		// elsewhere rather than straight back to it.
		if err == nil && (t != avoid || !z.remote.Load()) {
			return t, nil
		}
	}
	return z.all.Pick(ctx, avoid)
}
