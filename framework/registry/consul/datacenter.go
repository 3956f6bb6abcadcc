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
// (--consul-datacenter) names a datacenter the agent does not know.
// Registration itself would succeed — the agent registers in its own
// datacenter whatever the option says — but every discovery query would
// then fail with "No path to datacenter", and the process would report
// ready while reaching no other service (report j53d finding 3).
var ErrUnknownDatacenter = errors.New("unknown datacenter")

// checkDatacenter asks agent a (at addr) which datacenters it knows, once
// per Registry, when WithDatacenter is set. Only an answer listing
// datacenters, none of them ours, is a refusal (ErrUnknownDatacenter). An agent
// that cannot be reached returns its error as every other call does, so
// Register waits and retries as before; any other failure to answer (no
// servers yet, a proxy) says nothing about the name and lets the
// registration go on, as it did before this check.
func (r *Registry) checkDatacenter(ctx context.Context, a *api.Client, addr string) error {
	dc := r.cfg.datacenter
	if dc == "" || r.dcKnown.Load() {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	var dcs []string
	// The Raw query for a context (Catalog().Datacenters takes none); the
	// dc parameter the client adds to every request is ignored here.
	if _, err := a.Raw().Query("/v1/catalog/datacenters", &dcs, (&api.QueryOptions{}).WithContext(cctx)); err != nil {
		if unreachable(ctx, err) || ctx.Err() != nil {
			return fmt.Errorf("listing the datacenters: %w", err)
		}
		r.logErr("could not list the agent's datacenters to check the configured one; going on", "datacenter", dc, "err", err)
		return nil
	}
	if slices.Contains(dcs, dc) {
		r.dcKnown.Store(true)
		return nil
	}
	if len(dcs) == 0 { // an agent that knows no datacenter yet, not even its own
		return nil
	}
	return fmt.Errorf("%w %q (--consul-datacenter, WithDatacenter): the agent at %s knows %s; "+
		"every discovery query would fail with \"No path to datacenter\". Give one it knows, or leave it out for the agent's own: "+
		"registration always goes to the agent's own datacenter, the option only says where to discover",
		ErrUnknownDatacenter, dc, redact.URL(addr), strings.Join(dcs, ", "))
}
