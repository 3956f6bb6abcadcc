package zookeeper

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// TestConformance runs the registry suite against a ZooKeeper of its own
// (the restart case stops and starts it on the same port and data).
func TestConformance(t *testing.T) {
	srv := startServer(t)
	root := testRoot(t)
	// The session timeout is the lease: the suite holds a registration
	// across three and wants a withdrawal within half of one.
	const conformanceLease = 6 * time.Second
	registrytest.Run(t, registrytest.Harness{
		Lease: conformanceLease,
		Open: func(t testing.TB) registry.Registry {
			r, _ := newTestRegistry(t, srv.Addr(), root, WithSessionTimeout(conformanceLease))
			return r
		},
		Restart: func(t testing.TB) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			if err := srv.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		},
	})
}
