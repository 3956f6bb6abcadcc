package clusters

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/internal/consulcluster"
	"github.com/warren-mesh/warren/test/faults"
)

// TestConsulTwoDatacenters_LocalFirstFailoverAndBack joins dc1 and dc2
// over the WAN (one server each) and calls the service from dc1 at
// 200 req/s through a registry with WithFailover("dc2"). Pass criterion:
// while dc1 has a passing instance every call lands in dc1 (dc2's backend
// serves none); with none left in dc1 the client's set becomes dc2's and
// calls land there; when dc1 has one again the set and the calls come
// back; 0 failed calls throughout.
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
		return consul.New(ctx, consulOptions(dcs[i].Servers[0].Addr())...)
	}}
	start := func(dc int, id string) *Backend {
		b, err := env.StartBackend(ctx, dc, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	local, remote := start(0, "dc1-a"), start(1, "dc2-a")

	d, err := consul.New(ctx, consul.WithAddress(dc1.Servers[0].Addr()), consul.WithFailover("dc2"))
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

	run := faults.Load{Rate: Rate, Duration: 3 * time.Minute}.Start(ctx, Call(cl))
	defer func() {
		run.Stop()
		res := run.Wait()
		t.Logf("load: %v", res)
		if res.Errors() != 0 {
			t.Errorf("%d failed calls: %v", res.Errors(), res.FirstErrors(5))
		}
	}()
	// Local first: a second of calls, none in dc2.
	sleep(ctx, time.Second)
	if n := remote.hits.Load(); n != 0 || local.hits.Load() == 0 {
		t.Fatalf("local first: dc1 served %d, dc2 %d; want all in dc1", local.hits.Load(), n)
	}

	// dc1 loses its only instance: fail over to dc2.
	at := time.Now()
	if err := local.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitFor(ctx, remote.ID); err != nil {
		t.Fatal(err)
	}
	for remote.hits.Load() == 0 {
		if !sleep(ctx, 10*time.Millisecond) {
			t.Fatal("no call reached dc2 after dc1 had no instance")
		}
	}
	t.Logf("failover to dc2: set switched and first call served there %.2fs after the withdrawal", time.Since(at).Seconds())

	// dc1 has an instance again: back.
	at = time.Now()
	back := start(0, "dc1-b")
	if err := w.WaitFor(ctx, back.ID); err != nil {
		t.Fatal(err)
	}
	for back.hits.Load() == 0 {
		if !sleep(ctx, 10*time.Millisecond) {
			t.Fatal("no call came back to dc1")
		}
	}
	t.Logf("back to dc1: first call served there %.2fs after its registration began", time.Since(at).Seconds())
	// Once the switch has reached the balancer, dc2 serves nothing more.
	sleep(ctx, 500*time.Millisecond)
	before := remote.hits.Load()
	sleep(ctx, time.Second)
	if n := remote.hits.Load() - before; n != 0 {
		t.Errorf("dc2 served %d calls while dc1 had an instance again", n)
	}
}
