package edge_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// slowDiscovery holds back the first listing of one service until release
// closes, as a registry slow to answer one watch does.
type slowDiscovery struct {
	registry.Discovery
	service string
	release chan struct{}
}

func (s *slowDiscovery) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	ins, err := s.Discovery.Instancer(ctx, service)
	if err != nil || service != s.service {
		return ins, err
	}
	return &heldInstancer{Instancer: ins, release: s.release}, nil
}

type heldInstancer struct {
	sd.Instancer
	release chan struct{}
}

// Register subscribes ch once release closes (from its own goroutine, as
// a backend's first read arrives later).
func (h *heldInstancer) Register(ch chan<- sd.Event) {
	go func() {
		<-h.release
		h.Instancer.Register(ch)
	}()
}

// slowSetup takes delay to set up every watch, as etcd's Instancer does
// while etcd is down (it waits for a first listing), and never lists
// service never.
type slowSetup struct {
	registry.Discovery
	delay time.Duration
	never string
}

func (s *slowSetup) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	time.Sleep(s.delay)
	ins, err := s.Discovery.Instancer(ctx, service)
	if err != nil || service != s.never {
		return ins, err
	}
	return &heldInstancer{Instancer: ins, release: make(chan struct{})}, nil
}

// The start wait bounds the first snapshot from Run's start, however
// long the watches take to set up: they are set up side by side, and
// their setup counts against the wait (report j48a 4: 3 s per service
// came on top of the 10 s, one service after the other).
func TestWatcher_TheStartWaitCountsFromTheStartNotFromTheSetup(t *testing.T) {
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	if err := reg.Register(context.Background(), inst("user", 1001)); err != nil {
		t.Fatal(err)
	}
	// Three services, 2 s of setup each: one after the other, 6 s before
	// the 2 s wait even started (8 s); side by side, about 2 s.
	d := &slowSetup{Discovery: srv.Registry(), delay: 2 * time.Second, never: "order"}
	w, err := edge.NewWatcher(d, []string{"user", "order", "stock"}, edge.WithStartWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	t0 := time.Now()
	run(t, w, rec.apply)
	first := rec.waitFor(t, "a first snapshot", func(edge.Snapshot) bool { return true })
	took := time.Since(t0)
	t.Logf("first snapshot %s after Run started: %s", took.Round(10*time.Millisecond), edge.Summary(first))
	if took > 5500*time.Millisecond {
		t.Fatalf("the first snapshot came %s after Run started; want about 2 s (setup side by side, within the start wait)", took)
	}
	if u, _ := first.Service("order"); !u.Unlisted {
		t.Fatalf("order, never listed, is not Unlisted: %s", edge.Summary(first))
	}
}
