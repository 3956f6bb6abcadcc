package consul

import (
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
)

// Describe says where inst is registered, for the lifecycle's register
// line (app.RegistryDescriber): the agent addresses (the first is home)
// and the datacenter, "agent's" when none was given.
func (r *Registry) Describe(inst registry.Instance) []any {
	dc := r.cfg.datacenter
	if dc == "" {
		dc = "agent's"
	}
	return []any{"registry", "consul", "registry_at", strings.Join(redact.URLs(r.cfg.addresses), ","), "datacenter", dc}
}
