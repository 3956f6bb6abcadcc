package consul

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

var _ registry.Catalog = (*Registry)(nil)

// Services implements registry.Catalog: the catalog's service names (of
// the configured datacenter) that are valid Warren service names, Consul's
// own "consul" service left out.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("consul registry: %w", ErrClosed)
	}
	var names map[string][]string
	var err error
	for k, a := range r.agents { // the next agent when one cannot answer
		q := &api.QueryOptions{Datacenter: r.cfg.datacenter}
		if names, _, err = a.Catalog().Services(q.WithContext(ctx)); err == nil || ctx.Err() != nil {
			break
		}
		var known bool
		if err = r.explainQueryError(ctx, k, r.cfg.datacenter, err, &known); errors.Is(err, ErrUnknownDatacenter) {
			break // another agent of the datacenter knows no more
		}
	}
	if err != nil {
		return nil, fmt.Errorf("consul: list services: %w", err)
	}
	var out []string
	for name := range names {
		if name != "consul" && registry.ValidName(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
