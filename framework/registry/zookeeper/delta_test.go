package zookeeper

import (
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// A ZooKeeper instancer hands each change to a delta subscriber (the
// endpointer, the snapshot layer): the current set at once, then what
// joined and what left, not the whole set per change.
func TestInstancer_HandsChangesToDeltaSubscribers(t *testing.T) {
	srv := startServer(t)
	r, _ := newTestRegistry(t, srv.Addr(), testRoot(t))
	one, two := testInstance("delta", 1), testInstance("delta", 2)
	if err := r.Register(ctxFor(t, 30*time.Second), one); err != nil {
		t.Fatal(err)
	}
	in, err := r.NewInstancer(ctxFor(t, 30*time.Second), "delta")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	ch := make(chan registry.Delta, 16)
	var di registry.DeltaInstancer = in
	di.RegisterDelta(ch)
	defer di.DeregisterDelta(ch)
	next := func(what string) registry.Delta {
		t.Helper()
		select {
		case d := <-ch:
			return d
		case <-time.After(30 * time.Second):
			t.Fatalf("no delta within 30s: %s", what)
		}
		return registry.Delta{}
	}
	d := next("the current set")
	for len(d.Added) == 0 && d.Err != nil {
		d = next("the current set")
	}
	if len(d.Added) != 1 || d.Added[0] != one.String() {
		t.Fatalf("first delta %+v, want %s added", d, one.ID)
	}
	if err := r.Register(ctxFor(t, 30*time.Second), two); err != nil {
		t.Fatal(err)
	}
	if d := next("two joining"); len(d.Added) != 1 || d.Added[0] != two.String() || len(d.Removed) != 0 {
		t.Fatalf("delta %+v, want only %s added", d, two.ID)
	}
	if err := r.Deregister(ctxFor(t, 30*time.Second), one); err != nil {
		t.Fatal(err)
	}
	if d := next("one leaving"); len(d.Removed) != 1 || d.Removed[0] != one.String() || len(d.Added) != 0 {
		t.Fatalf("delta %+v, want only %s removed", d, one.ID)
	}
}
