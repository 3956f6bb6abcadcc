package memory

import (
	"context"
	"flag"

	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/registry"
)

// Name is the memory backend's name: --registry=memory.
const Name = "memory"

// Backend returns the memory backend for a main's list of registries
// (bootstrap.WithRegistries). It has no flags; each process gets its own
// empty registry, so it suits single-process demos and tests only.
func Backend() registry.Backend {
	return registry.Backend{
		Name:  Name,
		Usage: "this process only (tests and demos)",
		Bind:  func(*flag.FlagSet) registry.Settings { return settings{} },
	}
}

type settings struct{}

func (settings) Validate() error { return nil }

// Open says, once, what --registry memory means: a service started with
// it by mistake ran, ready, finding no other service and found by none,
// without a word (report j53d finding 10).
func (settings) Open(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if o.Logger != nil {
		level.Warn(o.Logger).Log("msg", "--registry memory is this process's own registry: no other process discovers this instance, and it discovers none; for tests and single-process demos (etcd, consul or zookeeper for a mesh)")
	}
	return New(), nil
}
