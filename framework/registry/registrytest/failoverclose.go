package registrytest

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/goroutines"
)

// follow is the frame of a registry.Failover's source readers.
const follow = "registry.(*Failover).follow("

// CloseStopsFailovers checks what Close of r, a Registry whose Instancer
// returns a *registry.Failover of sources sources, does to those
// Failovers (tracked is r's registry.Failovers): one the caller stopped is
// forgotten, one left running is stopped, readers and sources, before
// Close returns, and one asked for after Close is refused without leaving
// readers behind. Every backend with failover keeps that contract, so its
// tests share this check rather than each writing it again.
func CloseStopsFailovers(t *testing.T, ctx context.Context, r registry.Registry, tracked *registry.Failovers, service string, sources int) {
	t.Helper()
	base := len(goroutines.Running(follow)) // Instancer starts them, not New
	stopped, err := r.Instancer(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	stopped.Stop()
	left, err := r.Instancer(ctx, service)
	if err != nil {
		t.Fatal(err)
	}
	f := left.(*registry.Failover)
	ch := make(chan sd.Event, 16)
	f.Register(ch)
	goroutines.Wait(t, "while the Failover runs", base+sources, 5*time.Second, follow)
	if n := tracked.Len(); n != 1 {
		t.Errorf("Registry tracks %d Failovers, want 1 (the stopped one forgotten)", n)
	}
	done := make(chan struct{})
	f.OnStop(func() { close(done) })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Error("Close returned before it stopped the Failover")
	}
	goroutines.Wait(t, "after Close", base, 5*time.Second, follow)
	if _, err := r.Instancer(ctx, service); err == nil {
		t.Error("Instancer after Close: err = nil, want ErrClosed")
	}
	goroutines.Wait(t, "after an Instancer call after Close", base, 5*time.Second, follow)
}
