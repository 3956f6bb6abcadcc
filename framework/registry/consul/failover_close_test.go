package consul

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// followers counts the goroutines reading for a registry.Failover.
func followers() int {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "registry.(*Failover).follow(")
}

// waitFollowers waits, bounded, until n Failover readers run (a reader
// just started may not be in the stacks yet).
func waitFollowers(t *testing.T, n int, what string) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); followers() != n; {
		if time.Now().After(end) {
			t.Fatalf("%s: %d Failover readers still running after 5s, want %d", what, followers(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close stops an Instancer's Failover (WithFailover) the caller left
// running, readers and sources, as it does a plain instancer; one the
// caller stopped is forgotten (report j48c 4).
func TestRegistry_CloseStopsFailoverInstancers(t *testing.T) {
	a := needAgent(t)
	base := followers()
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
	waitFollowers(t, base+2, "while the Failover runs")
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
	waitFollowers(t, base, "after Close")
	if _, err := r.Instancer(ctx, "failoverclose"); err == nil {
		t.Error("Instancer after Close: err = nil, want ErrClosed")
	}
	waitFollowers(t, base, "after an Instancer call after Close")
}
