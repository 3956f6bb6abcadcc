package zookeeper

import (
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// State of one outage must not change how the registrar handles the next
// (the Consul instancer's hold of one outage stood in the way of the
// next one's). Two outages past the session timeout in a row, of the two
// kinds: the server down (its sessions survive the restart: the znode
// is presumed lost, then found in place), then a partition (the server
// expires the session: the znode is written again in a new one). After
// each the registrar is registered and the instance discoverable.
func TestRegistrar_TwoOutagesInARow_EachEndsRegistered(t *testing.T) {
	srv := startServer(t)
	root := testRoot(t)
	r, _ := newTestRegistry(t, srv.Addr(), root)
	inst := testInstance("twice", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	first := r.conn.SessionID()

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	awaitState(t, r, registry.StateRetrying, 30*time.Second)
	if err := srv.Start(ctxFor(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	awaitState(t, r, registry.StateRegistered, 30*time.Second)
	if got := r.conn.SessionID(); got != first {
		t.Logf("the session did not survive the restart (%x, was %x)", got, first)
	}
	// A reader that bypasses the proxy: only the registrar is cut off below.
	other, _ := newTestRegistry(t, srv.DirectAddr(), root)
	w := watch(t, other, "twice")
	w.await(t, 30*time.Second, "the instance after the restart", noErr(exactly(inst.ID)))

	second := r.conn.SessionID()
	srv.Cut()
	w.await(t, 30*time.Second, "the instance gone once its session expired", noErr(exactly()))
	awaitState(t, r, registry.StateRetrying, 30*time.Second)
	srv.Heal()
	w.await(t, 30*time.Second, "the instance back in a new session", noErr(exactly(inst.ID)))
	awaitState(t, r, registry.StateRegistered, 30*time.Second)
	if got := r.conn.SessionID(); got == second {
		t.Fatalf("same session %x after the partition; the test did not expire it", got)
	}
}
