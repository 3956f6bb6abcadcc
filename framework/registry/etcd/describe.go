package etcd

import (
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
)

// Describe says where inst is published, for the lifecycle's register
// line (app.RegistryDescriber): the endpoints and the record's key, whose
// first segment is the prefix (a staging --etcd-prefix shows there).
func (r *Registry) Describe(inst registry.Instance) []any {
	eps := r.cfg.endpoints
	if !r.ownsCli && r.cfg.client != nil { // WithClient: the endpoint options are ignored
		eps = r.cfg.client.Endpoints()
	}
	return []any{"registry", "etcd", "registry_at", strings.Join(redact.URLs(eps), ","), "key", r.key(inst)}
}
