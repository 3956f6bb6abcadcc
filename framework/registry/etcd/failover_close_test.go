package etcd

import (
	"testing"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// Close stops an Instancer's Failover (WithFailoverPrefixes) the caller
// left running, readers and sources, as it does a plain instancer; one
// the caller stopped is forgotten, and one asked for after Close is
// refused without leaving readers behind (report j48c 4).
func TestRegistry_CloseStopsFailoverInstancers(t *testing.T) {
	p := testPrefix(t)
	r, err := New(t.Context(), WithEndpoints(shared.Endpoints()...), WithPrefix(p), WithTTL(testTTL),
		WithFailoverPrefixes(p+"-b", p+"-c"))
	if err != nil {
		t.Fatal(err)
	}
	registrytest.CloseStopsFailovers(t, testCtx(t), r, &r.failovers, "user", 3)
}
