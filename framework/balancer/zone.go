package balancer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/warren-mesh/warren/framework/registry"
)

// ZoneAware keeps traffic close to the caller, in locality order zone →
// region → anywhere: while at least MinHealthy instances of the caller's
// zone are in rotation it picks among them only; below that, if a region
// is set (WithRegion), among the instances of the caller's region while
// enough of them are healthy; else over the whole set. Those thresholds
// are the spill-over points. Inside each group another balancer (round
// robin by default) does the picking.
type ZoneAware struct {
	zone       string
	minHealthy int
	region     string
	regionMin  int
	newGroup   func() Balancer

	local, regional, all Balancer
	locals, regionals    atomic.Pointer[[]*Target]
	remote, outside      atomic.Bool // instances exist beyond the zone, the region
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

// WithRegion adds the region tier: when the caller's zone has too few
// healthy instances, traffic stays in region while at least minHealthy
// of its instances are in rotation, and spills over to every instance
// below that. An instance's region is RegionOf (its "region" metadata, or
// the Consul datacenter it was found in).
func WithRegion(region string, minHealthy int) ZoneOption {
	return func(z *ZoneAware) error {
		if region == "" {
			return errors.New(`balancer.WithRegion(""): empty region`)
		}
		if minHealthy < 1 {
			return fmt.Errorf("balancer.WithRegion(%q, %d): at least 1", region, minHealthy)
		}
		z.region, z.regionMin = region, minHealthy
		return nil
	}
}

// WithGroupBalancer sets the balancer constructor used inside each group
// (default NewRoundRobin). It is called once per group: zone, region (with
// WithRegion) and all.
func WithGroupBalancer(newBalancer func() Balancer) ZoneOption {
	return func(z *ZoneAware) error {
		if newBalancer == nil {
			return errors.New("balancer.WithGroupBalancer(nil)")
		}
		z.newGroup = newBalancer
		return nil
	}
}

// RegionOf is the region of an instance for the region tier: its
// Metadata["region"] (set it when registering, e.g. etcd), else
// Metadata["dc"] (the Consul datacenter it was discovered in).
func RegionOf(inst registry.Instance) string {
	if r := inst.Metadata["region"]; r != "" {
		return r
	}
	return inst.Metadata["dc"]
}

// NewZoneAware returns a zone-aware balancer for a caller in zone, or the
// first option's complaint about its value.
func NewZoneAware(zone string, opts ...ZoneOption) (*ZoneAware, error) {
	z := &ZoneAware{zone: zone, minHealthy: 1, newGroup: func() Balancer { return NewRoundRobin() }}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("balancer: nil ZoneOption")
		}
		if err := o(z); err != nil {
			return nil, err
		}
	}
	z.local, z.all = z.newGroup(), z.newGroup()
	if z.region != "" {
		z.regional = z.newGroup()
	}
	return z, nil
}

// Update implements Balancer.
func (z *ZoneAware) Update(ts []*Target) {
	var local, regional []*Target
	for _, t := range ts {
		inst := t.Instance()
		if inst.Zone == z.zone {
			local = append(local, t)
		}
		if z.region != "" && RegionOf(inst) == z.region {
			regional = append(regional, t)
		}
	}
	z.local.Update(local)
	z.all.Update(ts)
	z.locals.Store(&local)
	z.remote.Store(len(local) < len(ts))
	if z.regional != nil {
		z.regional.Update(regional)
		z.regionals.Store(&regional)
		z.outside.Store(len(regional) < len(ts))
	}
}

// Pick implements Balancer.
func (z *ZoneAware) Pick(ctx context.Context, avoid *Target) (*Target, error) {
	if healthy(z.locals.Load()) >= z.minHealthy {
		t, err := z.local.Pick(ctx, avoid)
		// A retry after the only healthy local instance failed goes
		// elsewhere rather than straight back to it.
		if err == nil && (t != avoid || !z.remote.Load()) {
			return t, nil
		}
	}
	if z.regional != nil && healthy(z.regionals.Load()) >= z.regionMin {
		t, err := z.regional.Pick(ctx, avoid)
		if err == nil && (t != avoid || !z.outside.Load()) {
			return t, nil
		}
	}
	return z.all.Pick(ctx, avoid)
}

// healthy counts the targets not ejected.
func healthy(p *[]*Target) int {
	n := 0
	if p != nil {
		for _, t := range *p {
			if !t.Ejected() {
				n++
			}
		}
	}
	return n
}
