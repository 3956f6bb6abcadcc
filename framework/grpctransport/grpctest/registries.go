package grpctest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// Registries are the real registries a package's gRPC tests share: an
// embedded etcd and, unless WARREN_SKIP_CONSUL=1, a `consul agent -dev`
// (bin/consul). Start them in TestMain and Close them after m.Run.
type Registries struct {
	Etcd   *embedetcd.Server
	Consul *consultest.Agent // nil when skipped
}

// StartRegistries starts both; an error says which one failed and how to
// skip Consul.
func StartRegistries() (*Registries, error) {
	s, err := embedetcd.Start()
	if err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	r := &Registries{Etcd: s}
	if !consultest.Skipped() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, err := consultest.Start(ctx)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("these tests need a real Consul agent: %w (set %s=1 to skip them)", err, consultest.SkipEnv)
		}
		r.Consul = a
	}
	return r, nil
}

// Close stops both.
func (r *Registries) Close() {
	if r.Consul != nil {
		r.Consul.Close()
	}
	r.Etcd.Close()
}

// Open returns a new client of the registry named "etcd" or "consul",
// closed when the test ends; etcd keys live under a prefix of the test's
// name, so each test has its own services. It skips the test when Consul
// is asked for and skipped.
func (r *Registries) Open(t testing.TB, name string) registry.Registry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		reg registry.Registry
		err error
	)
	switch name {
	case "etcd":
		reg, err = etcd.New(ctx, etcd.WithEndpoints(r.Etcd.Endpoints()...), etcd.WithPrefix("t-"+strings.ReplaceAll(t.Name(), "/", "-")), etcd.WithTTL(5*time.Second))
	case "consul":
		if r.Consul == nil {
			t.Skipf("%s=1", consultest.SkipEnv)
		}
		reg, err = consul.New(ctx, consul.WithAddress(r.Consul.Addr()))
	default:
		t.Fatalf("grpctest: no registry %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return reg
}
