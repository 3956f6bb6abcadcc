package consul

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

// Close stops an Instancer's Failover (WithFailover) the caller left
// running, readers and sources, as it does a plain instancer; one the
// caller stopped is forgotten (report j48c 4).
func TestRegistry_CloseStopsFailoverInstancers(t *testing.T) {
	a := needAgent(t)
	base := len(goroutines.Running(follow))
	r, err := New(context.Background(), WithAddress(a.Addr()), WithFailover("dc2"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopped, err := r.Instancer(ctx, "failoverclose")
	if err != nil {
		t.Fatal(err)
	}
	stopped.Stop()
	left, err := r.Instancer(ctx, "failoverclose")
	if err != nil {
		t.Fatal(err)
	}
	f := left.(*registry.Failover)
	ch := make(chan sd.Event, 16)
	f.Register(ch)
	goroutines.Wait(t, "while the Failover runs", base+2, 5*time.Second, follow)
	tracked := r.failovers.Len()
	if tracked != 1 {
		t.Errorf("Registry tracks %d Failovers, want 1 (the stopped one forgotten)", tracked)
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
	if _, err := r.Instancer(ctx, "failoverclose"); err == nil {
		t.Error("Instancer after Close: err = nil, want ErrClosed")
	}
	goroutines.Wait(t, "after an Instancer call after Close", base, 5*time.Second, follow)
}
