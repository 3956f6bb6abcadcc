package consul

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/internal/redact"
)

// ErrUnknownDatacenter ends a Register whose WithDatacenter
// (--consul-datacenter) or one of whose WithFailover datacenters
// (--consul-failover-datacenters) the agent does not know; discovery
// (instancer events, Services) reports it on its first failed query there.
// Registration itself would succeed — the agent registers in its own
// datacenter whatever the options say — but every discovery query to that
// datacenter would then fail with "No path to datacenter": with
// WithDatacenter the process would report ready while reaching no other
// service (report j53d finding 3); with WithFailover it would report ready
// with a failover that cannot fail over (report r54b G3).
var ErrUnknownDatacenter = errors.New("unknown datacenter")

// checkDatacenters asks agent a (at addr) which datacenters it knows, once
// per Registry, when WithDatacenter or WithFailover names any. Only an
// answer listing datacenters, not all of ours, is a refusal
// (ErrUnknownDatacenter, one per option, errors.Join'ed). An agent that
// cannot be reached returns its error as every other call does, so
// Register waits and retries as before; any other failure to answer (no
// servers yet, a proxy) says nothing about the names and lets the
// registration go on, as it did before this check.
func (r *Registry) checkDatacenters(ctx context.Context, a *api.Client, addr string) error {
	if r.dcKnown.Load() {
		return nil
	}
	known, err := r.datacentersKnown(ctx, a, addr, r.cfg.datacenter, r.cfg.failover)
	if known {
		r.dcKnown.Store(true)
	}
	return err
}

// datacentersKnown is the check of checkDatacenters for dc (as
// WithDatacenter's) and failover (as WithFailover's): known says the
// agent listed them all; err is as checkDatacenters'.
func (r *Registry) datacentersKnown(ctx context.Context, a *api.Client, addr, dc string, failover []string) (known bool, err error) {
	if dc == "" && len(failover) == 0 {
		return true, nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	var dcs []string
	// The Raw query for a context (Catalog().Datacenters takes none).
	if _, err := a.Raw().Query("/v1/catalog/datacenters", &dcs, (&api.QueryOptions{}).WithContext(cctx)); err != nil {
		if unreachable(ctx, err) || ctx.Err() != nil {
			return false, fmt.Errorf("listing the datacenters: %w", err)
		}
		r.logErr("could not list the agent's datacenters to check the configured ones; going on",
			"datacenter", dc, "failover", strings.Join(failover, ","), "err", err)
		return false, nil
	}
	if len(dcs) == 0 { // an agent that knows no datacenter yet, not even its own
		return false, nil
	}
	var errs []error
	if dc != "" && !slices.Contains(dcs, dc) {
		errs = append(errs, fmt.Errorf("%w %q (--consul-datacenter, WithDatacenter): the agent at %s knows %s; "+
			"every discovery query would fail with \"No path to datacenter\". Give one it knows, or leave it out for the agent's own: "+
			"registration always goes to the agent's own datacenter, the option only says where to discover",
			ErrUnknownDatacenter, dc, redact.URL(addr), strings.Join(dcs, ", ")))
	}
	var unknown []string
	for _, f := range failover {
		if !slices.Contains(dcs, f) {
			unknown = append(unknown, fmt.Sprintf("%q", f))
		}
	}
	if len(unknown) > 0 {
		errs = append(errs, fmt.Errorf("%w %s (--consul-failover-datacenters, WithFailover): the agent at %s knows %s; "+
			"failing over there would fail with \"No path to datacenter\". List datacenters it knows (joined over the WAN), or leave the option out",
			ErrUnknownDatacenter, strings.Join(unknown, ", "), redact.URL(addr), strings.Join(dcs, ", ")))
	}
	return len(errs) == 0, errors.Join(errs...)
}

// explainQueryError is how a process that only discovers learns of a
// WithDatacenter or WithFailover datacenter the agent does not know: when
// a discovery query the agent answered with an error (an unknown
// datacenter's is "500 No path to datacenter") names one of them, that
// datacenter is checked as Register checks it, and an unknown one comes
// back as ErrUnknownDatacenter wrapping err. Only failed queries ask, so a
// right name costs no request; an agent that cannot be reached is not
// asked (its error stays, and the caller retries as before). *known
// records, per caller, that the agent listed the datacenter, so a caller
// whose queries keep failing for another reason asks once. Any other
// outcome returns err as it is.
func (r *Registry) explainQueryError(ctx context.Context, agent int, queried string, err error, known *bool) error {
	if *known || queried == "" || statusCode(err) == 0 || r.dcKnown.Load() {
		return err
	}
	dc, failover := "", []string(nil)
	switch {
	case queried == r.cfg.datacenter:
		dc = queried
	case slices.Contains(r.cfg.failover, queried):
		failover = []string{queried}
	default:
		return err // a Datacenter instancer option: no flag to name
	}
	ok, derr := r.datacentersKnown(ctx, r.agents[agent], r.cfg.addresses[agent], dc, failover)
	*known = ok
	if errors.Is(derr, ErrUnknownDatacenter) {
		return fmt.Errorf("%w (the query: %w)", derr, err)
	}
	return err
}
