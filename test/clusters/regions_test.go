package clusters

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/test/faults"
)

// TestEtcdRegions_LocalFirstFailoverAndBack: each region registers under
// its own prefix (warren-eu, warren-us) of one etcd; a client in eu uses
// WithPrefix("warren-eu") and WithFailoverPrefixes("warren-us") and calls
// at 200 req/s. Pass criterion as for two Consul datacenters: all calls in
// eu while eu has an instance; in us once eu has none; back in eu when eu
// has one again; 0 failed calls.
func TestEtcdRegions_LocalFirstFailoverAndBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	prefixes := []string{"warren-eu", "warren-us"}
	env := Env{Open: func(ctx context.Context, i int) (registry.Registry, error) {
		return etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix(prefixes[i]))
	}}
	start := func(region int, id string) *Backend {
		b, err := env.StartBackend(ctx, region, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	local, remote := start(0, "eu-a"), start(1, "us-a")

	d, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithPrefix("warren-eu"),
		etcd.WithFailoverPrefixes("warren-us"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	in, err := d.Instancer(ctx, Service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	w := Watch(in)
	t.Cleanup(w.Stop)
	cl, err := NewClient(in)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	if err := w.WaitFor(ctx, local.ID); err != nil {
		t.Fatal(err)
	}

	run := faults.Load{Rate: Rate, Duration: 2 * time.Minute}.Start(ctx, Call(cl))
	defer func() {
		run.Stop()
		res := run.Wait()
		t.Logf("load: %v", res)
		if res.Errors() != 0 {
			t.Errorf("%d failed calls: %v", res.Errors(), res.FirstErrors(5))
		}
	}()
	sleep(ctx, time.Second)
	if n := remote.hits.Load(); n != 0 || local.hits.Load() == 0 {
		t.Fatalf("local first: eu served %d, us %d; want all in eu", local.hits.Load(), n)
	}
	if err := local.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitFor(ctx, remote.ID); err != nil {
		t.Fatal(err)
	}
	for remote.hits.Load() == 0 {
		if !sleep(ctx, 10*time.Millisecond) {
			t.Fatal("no call reached us after eu had no instance")
		}
	}
	back := start(0, "eu-b")
	if err := w.WaitFor(ctx, back.ID); err != nil {
		t.Fatal(err)
	}
	for back.hits.Load() == 0 {
		if !sleep(ctx, 10*time.Millisecond) {
			t.Fatal("no call came back to eu")
		}
	}
	sleep(ctx, 500*time.Millisecond)
	before := remote.hits.Load()
	sleep(ctx, time.Second)
	if n := remote.hits.Load() - before; n != 0 {
		t.Errorf("us served %d calls while eu had an instance again", n)
	}
}
