package memory

import (
	"context"
	"flag"

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

func (settings) Open(ctx context.Context, _ registry.OpenOptions) (registry.Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return New(), nil
}
