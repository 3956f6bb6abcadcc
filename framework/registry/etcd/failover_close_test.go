package etcd

import (
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/goroutines"
)

// follow is the frame of a registry.Failover's source readers.
const follow = "registry.(*Failover).follow("

// Close stops an Instancer's Failover (WithFailoverPrefixes) the caller
// left running, readers and sources, as it does a plain instancer; one
// the caller stopped is forgotten, and one asked for after Close is
// refused without leaving readers behind (report j48c 4).
func TestRegistry_CloseStopsFailoverInstancers(t *testing.T) {
	base := len(goroutines.Running(follow))
	p := testPrefix(t)
	r, err := New(t.Context(), WithEndpoints(shared.Endpoints()...), WithPrefix(p), WithTTL(testTTL),
		WithFailoverPrefixes(p+"-b", p+"-c"))
	if err != nil {
		t.Fatal(err)
	}
	stopped, err := r.Instancer(testCtx(t), "user")
	if err != nil {
		t.Fatal(err)
	}
	stopped.Stop()
	left, err := r.Instancer(testCtx(t), "user")
	if err != nil {
		t.Fatal(err)
	}
	f := left.(*registry.Failover)
	ch := make(chan sd.Event, 16)
	f.Register(ch)
	goroutines.Wait(t, "while the Failover runs", base+3, 5*time.Second, follow)
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
	if _, err := r.Instancer(testCtx(t), "user"); err == nil {
		t.Error("Instancer after Close: err = nil, want ErrClosed")
	}
	goroutines.Wait(t, "after an Instancer call after Close", base, 5*time.Second, follow)
}
