package consul

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// TestConformance runs the registry suite against a real Consul agent of
// its own (-dev mode; the restart case restarts it with empty state, so
// the registrars have to register again).
func TestConformance(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	// The check's TTL is the lease: the suite holds a registration across
	// three and wants a withdrawal within half of one.
	const conformanceLease = 6 * time.Second
	registrytest.Run(t, registrytest.Harness{
		Lease: conformanceLease,
		Open: func(t testing.TB) registry.Registry {
			r, err := New(context.Background(),
				WithAddress(a.Addr()),
				WithTTLCheck(conformanceLease),
				WithRetryBackoff(50*time.Millisecond, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		Restart: func(t testing.TB) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := a.Restart(ctx); err != nil {
				t.Fatal(err)
			}
		},
		AddedMetadata: []string{metaDC},
	})
}
