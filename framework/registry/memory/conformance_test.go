package memory_test

import (
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// The memory backend has no server process, so the restart case does not
// apply; every other case runs against one shared Server, each Registry
// playing a separate process.
func TestConformance(t *testing.T) {
	srv := memory.NewServer()
	registrytest.Run(t, registrytest.Harness{
		Lease: registrytest.NoLease,
		Open:  func(testing.TB) registry.Registry { return srv.Registry() },
	})
}
