package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
)

// Each backend says where it publishes an instance, for the register
// line (report j57b F8: a staging prefix or another cluster was silent).
// The backends are opened against closed ports: none waits for its
// server, and Describe asks it nothing.
func TestRegistryDescriber_EveryBackendSaysWhereItRegisters(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inst := registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://127.0.0.1:1"}}
	open := map[string]func() (registry.Registry, error){
		"etcd": func() (registry.Registry, error) {
			return etcd.New(ctx, etcd.WithEndpoints("127.0.0.1:1"), etcd.WithPrefix("warren-staging"))
		},
		"consul": func() (registry.Registry, error) {
			return consul.New(ctx, consul.WithAddress("127.0.0.1:1"), consul.WithDatacenter("dc-2"))
		},
		"zookeeper": func() (registry.Registry, error) {
			return zookeeper.New(ctx, zookeeper.WithServers("127.0.0.1:1"), zookeeper.WithRoot("/staging"))
		},
		"kubernetes": func() (registry.Registry, error) {
			return kubernetes.New(ctx, kubernetes.WithRESTConfig(&rest.Config{Host: "http://127.0.0.1:1"}), kubernetes.WithNamespace("shop"))
		},
	}
	want := map[string]string{
		"etcd":       "registry=etcd registry_at=127.0.0.1:1 key=/warren-staging/services/user/user-1",
		"consul":     "registry=consul registry_at=127.0.0.1:1 datacenter=dc-2",
		"zookeeper":  "registry=zookeeper registry_at=127.0.0.1:1 path=/staging/services/user/user-1",
		"kubernetes": "registry=kubernetes namespace=shop",
	}
	for name, o := range open {
		r, err := o()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, ok := r.(app.RegistryDescriber)
		if !ok {
			t.Errorf("%s: %T is no app.RegistryDescriber", name, r)
		} else if got := pairs(d.Describe(inst)); got != want[name] {
			t.Errorf("%s: Describe = %s, want %s", name, got, want[name])
		}
		r.Close()
	}
}

func pairs(kv []any) string {
	var b []string
	for i := 0; i+1 < len(kv); i += 2 {
		b = append(b, fmt.Sprintf("%v=%v", kv[i], kv[i+1]))
	}
	return strings.Join(b, " ")
}
