package clusters

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// TestEtcdRegions_LocalFirstFailoverAndBack: each region registers under
// its own prefix (warren-eu, warren-us) of one etcd; a client in eu uses
// WithPrefix("warren-eu") and WithFailoverPrefixes("warren-us"). Pass
// criterion as for two Consul datacenters (failoverAndBack).
func TestEtcdRegions_LocalFirstFailoverAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	prefixes := []string{"warren-eu", "warren-us"}
	// The failover phase deregisters the local backend and judges what the
	// caller sees; a loaded machine has made one embedded-etcd delete take
	// longer than the 3 s default close timeout, which is not what this
	// test is about.
	env := Env{Open: func(ctx context.Context, i int) (registry.Registry, error) {
		return etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix(prefixes[i]),
			etcd.WithCloseTimeout(30*time.Second))
	}}
	d, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("warren-eu"),
		etcd.WithFailoverPrefixes("warren-us"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	failoverAndBack(t, ctx, env, d, [2]string{"eu", "us"})
}
