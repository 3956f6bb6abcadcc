package meshview

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zktest"
)

// TestView_OnRealBackends runs the view on each backend's real server:
// it finds the service through the backend's Catalog, shows the instance
// with its record and readiness, and the withdrawal.
func TestView_OnRealBackends(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	backends := map[string]func(t *testing.T) func() registry.Registry{
		"etcd": func(t *testing.T) func() registry.Registry {
			srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			return func() registry.Registry {
				r, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(5*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r
			}
		},
		"consul": func(t *testing.T) func() registry.Registry {
			if consultest.Skipped() {
				t.Skipf("%s=1", consultest.SkipEnv)
			}
			a, err := consultest.Start(ctx)
			if err != nil {
				t.Fatalf("these tests need a real Consul agent (bin/consul): %v", err)
			}
			t.Cleanup(func() { a.Close() })
			return func() registry.Registry {
				r, err := consul.New(ctx, consul.WithAddress(a.Addr()))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r
			}
		},
		"zookeeper": func(t *testing.T) func() registry.Registry {
			srv, err := zktest.Start(ctx)
			if err != nil {
				t.Fatalf("these tests need Debian's zookeeper (make zookeeper): %v", err)
			}
			t.Cleanup(func() { srv.Close() })
			return func() registry.Registry {
				r, err := zookeeper.New(ctx, zookeeper.WithServers(srv.Addr()))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r
			}
		},
	}
	for _, name := range []string{"etcd", "consul", "zookeeper"} {
		t.Run(name, func(t *testing.T) {
			open := backends[name](t)
			reg := open()
			f := startInstance(t, "user", "user-1", "zone-a")
			if err := reg.Register(ctx, f.inst); err != nil {
				t.Fatal(err)
			}
			v := runView(t, open(), WithRegistryName(name))
			eventually(t, v, "user-1 found through the catalog, ready", func(s Snapshot) bool {
				i := find(s, "user", "user-1")
				return i != nil && i.Zone == "zone-a" && i.Version == "1.0.0" && !i.Registered.IsZero() &&
					i.Readiness != nil && i.Readiness.Ready && hasEvent(s, KindRegister, "user", "user-1")
			})
			f.draining.Store(true) // shutting down, as a withdrawing service is
			if err := reg.Deregister(ctx, f.inst); err != nil {
				t.Fatal(err)
			}
			eventually(t, v, "user-1 withdrawn", func(s Snapshot) bool {
				return find(s, "user", "user-1") == nil && hasEvent(s, KindWithdraw, "user", "user-1")
			})
		})
	}
}
