package kubernetes

import "github.com/warren-mesh/warren/framework/registry"

// Describe says where inst is published, for the lifecycle's register
// line (app.RegistryDescriber): the namespace its Pod's readiness is
// discovered in.
func (r *Registry) Describe(inst registry.Instance) []any {
	return []any{"registry", "kubernetes", "namespace", r.namespace}
}
