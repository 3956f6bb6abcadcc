package app

import "github.com/warren-mesh/warren/framework/registry"

// RegistryDescriber is implemented by registries that can say where they
// publish an instance. The register phase's line carries what Describe
// returns, so an instance deployed with a staging --etcd-prefix or another
// cluster's endpoints shows it in its own log (report j57b F8: the line had
// the ID and endpoints only, and such an instance was silent).
//
// Describe returns log key/value pairs: "registry" and the backend's name
// first, then what identifies the place: "registry_at" (the servers or
// agent it talks to, secrets masked) and the backend's own keys (etcd:
// "key"; consul: "datacenter"; zookeeper: "path"; kubernetes: "namespace").
// It must be quick and must not call the registry's server.
type RegistryDescriber interface {
	Describe(inst registry.Instance) []any
}

// describeRegistry is reg's Describe for inst, nothing when reg cannot
// describe itself (a registry of the embedder's, the memory one).
func describeRegistry(reg registry.Registry, inst registry.Instance) []any {
	d, ok := reg.(RegistryDescriber)
	if !ok {
		return nil
	}
	kv := d.Describe(inst)
	if len(kv)%2 != 0 { // an odd list would shift every later pair
		kv = append(kv, "(missing)")
	}
	return kv
}
