package balancer

import (
	"context"
	"errors"
	"fmt"
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

// ZoneOption configures ZoneAware. An option given a bad value makes
// NewZoneAware fail with an error that names it.
type ZoneOption func(*ZoneAware) error

// WithMinHealthy sets how many local instances must be in rotation to keep
// traffic local (default 1).
func WithMinHealthy(n int) ZoneOption {
	return func(z *ZoneAware) error {
		if n < 1 {
			return fmt.Errorf("balancer.WithMinHealthy(%d): at least 1", n)
		}
		z.minHealthy = n
		return nil
	}
}

// WithGroupBalancer sets the balancer constructor used inside each group
// (default NewRoundRobin). It is called twice: once for local, once for
// all.
func WithGroupBalancer(newBalancer func() Balancer) ZoneOption {
	return func(z *ZoneAware) error {
		if newBalancer == nil {
			return errors.New("balancer.WithGroupBalancer(nil)")
		}
		z.local, z.all = newBalancer(), newBalancer()
		return nil
	}
}

// NewZoneAware returns a zone-aware balancer for a caller in zone, or the
// first option's complaint about its value.
func NewZoneAware(zone string, opts ...ZoneOption) (*ZoneAware, error) {
	z := &ZoneAware{zone: zone, minHealthy: 1}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("balancer: nil ZoneOption")
		}
		if err := o(z); err != nil {
			return nil, err
		}
	}
	if z.local == nil {
		z.local, z.all = NewRoundRobin(), NewRoundRobin()
	}
	return z, nil
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
