package consul

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// Close stops an Instancer's Failover (WithFailover) the caller left
// running, readers and sources, as it does a plain instancer; one the
// caller stopped is forgotten (report j48c 4).
func TestRegistry_CloseStopsFailoverInstancers(t *testing.T) {
	a := needAgent(t)
	r, err := New(context.Background(), WithAddress(a.Addr()), WithFailover("dc2"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	registrytest.CloseStopsFailovers(t, ctx, r, &r.failovers, "failoverclose", 2)
}
