package clusters

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

// TestConsulTwoDatacenters_LocalFirstFailoverAndBack joins dc1 and dc2
// over the WAN (one server each) and calls the service from dc1 at
// 200 req/s through a registry with WithFailover("dc2"). Pass criterion
// (failoverAndBack): while dc1 has a passing instance every call lands in
// dc1; with none left in dc1 the client's set becomes dc2's and calls land
// there; when dc1 has one again the set and the calls come back; 0 failed
// calls throughout.
func TestConsulTwoDatacenters_LocalFirstFailoverAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dc1 := startConsul(t, ctx, consulcluster.Config{Datacenter: "dc1", Servers: 1})
	dc2 := startConsul(t, ctx, consulcluster.Config{Datacenter: "dc2", Servers: 1, JoinWAN: dc1.WANAddrs()})
	if err := dc1.WaitDatacenters(ctx, "dc1", "dc2"); err != nil {
		t.Fatal(err)
	}
	dcs := []*consulcluster.Cluster{dc1, dc2}
	env := Env{Open: func(ctx context.Context, i int) (registry.Registry, error) {
		return consul.New(ctx, ConsulOptions(dcs[i].Servers[0].Addr())...)
	}}
	d, err := consul.New(ctx, consul.WithAddress(dc1.Servers[0].Addr()), consul.WithFailover("dc2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	failoverAndBack(t, ctx, env, d, [2]string{"dc1", "dc2"})
}
