package clusters

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// runPhases runs each phase on m under its own 2-minute deadline and
// checks its figures; logs is printed with a failure. It stops at the
// first failed phase: the next needs a healthy cluster.
func runPhases(t *testing.T, ctx context.Context, m *Mesh, logs func() string, check func(ctx context.Context) error,
	phases ...func(ctx context.Context) Fault) {
	t.Helper()
	for _, phase := range phases {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		f := phase(pctx)
		t.Run(f.Name, func(t *testing.T) {
			fig, err := m.Run(pctx, f)
			t.Logf("%v", fig)
			if err == nil {
				err = fig.Check()
			}
			if err == nil && check != nil {
				err = check(pctx)
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, logs())
			}
		})
		pcancel()
		if t.Failed() {
			return
		}
	}
}

// failoverAndBack drives the local-first policy of a regional instancer
// from the caller's side. env.Open(0) registers in the local region or
// datacenter, env.Open(1) in the other; d is the caller's registry, whose
// Instancer must prefer region 0. Under 200 req/s it checks: every call
// lands locally while the local region has an instance; with none, the set
// becomes the other region's and calls land there; with one again, the set
// and the calls come back; 0 failed calls throughout.
func failoverAndBack(t *testing.T, ctx context.Context, env Env, d registry.Registry, names [2]string) {
	t.Helper()
	start := func(region int, id string) *Backend {
		b, err := env.StartBackend(ctx, region, id)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	local, remote := start(0, names[0]+"-a"), start(1, names[1]+"-a")
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

	run := load(3*time.Minute).Start(ctx, Call(cl))
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
		t.Fatalf("local first: %s served %d, %s %d; want all in %s", names[0], local.hits.Load(), names[1], n, names[0])
	}

	at := time.Now()
	if err := local.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitFor(ctx, remote.ID); err != nil {
		t.Fatal(err)
	}
	if !firstHit(ctx, remote) {
		t.Fatalf("no call reached %s after %s had no instance", names[1], names[0])
	}
	t.Logf("failover to %s: first call served there %.2fs after the withdrawal", names[1], time.Since(at).Seconds())

	at = time.Now()
	back := start(0, names[0]+"-b")
	if err := w.WaitFor(ctx, back.ID); err != nil {
		t.Fatal(err)
	}
	if !firstHit(ctx, back) {
		t.Fatalf("no call came back to %s", names[0])
	}
	t.Logf("back to %s: first call served there %.2fs after its registration began", names[0], time.Since(at).Seconds())
	// Once the switch has reached the balancer, the other region serves
	// nothing more.
	sleep(ctx, 500*time.Millisecond)
	before := remote.hits.Load()
	sleep(ctx, time.Second)
	if n := remote.hits.Load() - before; n != 0 {
		t.Errorf("%s served %d calls while %s had an instance again", names[1], n, names[0])
	}
}

// firstHit waits until b served a call; false if ctx ended first.
func firstHit(ctx context.Context, b *Backend) bool {
	for b.hits.Load() == 0 {
		if !sleep(ctx, 10*time.Millisecond) {
			return false
		}
	}
	return true
}

// portHeld says whether a killed process's port is kept from other
// processes until its restart (freeport.Hold), as the clusters promise.
func portHeld(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil
	}
	ln.Close()
	return fmt.Errorf("the killed process's port %s could be bound by someone else", addr)
}
