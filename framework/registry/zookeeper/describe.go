package zookeeper

import (
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
)

// Describe says where inst is published, for the lifecycle's register
// line (app.RegistryDescriber): the servers and the instance's znode,
// under the root (--zookeeper-root).
func (r *Registry) Describe(inst registry.Instance) []any {
	return []any{"registry", "zookeeper", "registry_at", strings.Join(r.cfg.servers, ","), "path", r.nodePath(inst)}
}
