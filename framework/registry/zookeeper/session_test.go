package zookeeper

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zktest"
)

// A partition that sends no reset: the client notices it only when its
// read deadline (two thirds of the session timeout) passes, while the
// server's expiry clock started at the last packet. The registrar turns
// retrying when the server drops the znode, not a read deadline later
// (report j47b: /readyz green 6.3 s after the record was gone). With a
// 12 s session that gap was 8 s; the bound below leaves 4 s for a loaded
// machine to run the watcher and the poll.
func TestSilentPartition_RetryingWhenTheServerExpiresTheSession(t *testing.T) {
	const session = 12 * time.Second
	srv := startServer(t)
	root := testRoot(t)
	r, _ := newTestRegistry(t, srv.Addr(), root, WithSessionTimeout(session))
	other, _ := newTestRegistry(t, srv.DirectAddr(), root) // the watcher bypasses the proxy
	w := watch(t, other, "sil")
	inst := testInstance("sil", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	w.await(t, 30*time.Second, "the instance", noErr(exactly(inst.ID)))

	srv.Silence()
	defer srv.Heal()
	w.await(t, time.Minute, "the instance gone once its session expired", noErr(exactly()))
	gone := time.Now()
	retrying := awaitState(t, r, registry.StateRetrying, time.Minute)
	if late := retrying.Sub(gone); late > 4*time.Second {
		t.Fatalf("the registrar turned retrying %s after the server dropped its znode; want it within 4s (the server's clock, not the read deadline's)", late)
	}
}

// The server clamps the session timeout to its maxSessionTimeout: the
// registrar presumes the session lost after the granted timeout, says so,
// and names it (report j47b: asking 30 s of a server capped at 10 s left
// /readyz green 26 s after the record was gone).
func TestSessionTimeout_TheGrantedOneIsUsed(t *testing.T) {
	srv := startServer(t, zktest.WithConfig("maxSessionTimeout=3000"))
	r, logs := newTestRegistry(t, srv.Addr(), testRoot(t), WithSessionTimeout(30*time.Second))
	if err := r.Register(ctxFor(t, 30*time.Second), testInstance("clamp", 1)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `msg="ZooKeeper granted another session timeout than the one asked for; using it" requested=30s granted=3s`) {
		t.Errorf("no warning of the clamp:\n%s", logs)
	}
	srv.Cut()
	defer srv.Heal()
	awaitState(t, r, registry.StateRetrying, 20*time.Second) // 30 s would not make it
	if st := r.Status(); !strings.Contains(st.LastError, "for the session timeout (3s)") {
		t.Fatalf("Status %+v; want the granted 3s named", st)
	}
}

// ZooKeeper takes the session timeout in int32 milliseconds: one longer
// overflowed, and every connection failed "zk: could not connect to a
// server" against a healthy server, forever (report j53d finding 4). New
// refuses it, the flag too (TestBackend_BadFlags…); the longest one that
// fits registers at once, clamped by the server.
func TestSessionTimeout_OnlyWhatFitsInt32Milliseconds(t *testing.T) {
	for _, d := range []time.Duration{MaxSessionTimeout + time.Millisecond, 999 * time.Hour} {
		_, err := New(context.Background(), WithServers("127.0.0.1:2181"), WithSessionTimeout(d))
		if err == nil || !strings.Contains(err.Error(), "want from 1s to 596h31m23s") {
			t.Errorf("New with a session timeout of %s: %v, want it refused with the range", d, err)
		}
	}
	srv := startServer(t)
	r, logs := newTestRegistry(t, srv.Addr(), testRoot(t), WithSessionTimeout(MaxSessionTimeout))
	if err := r.Register(ctxFor(t, 20*time.Second), testInstance("longest", 1)); err != nil {
		t.Fatalf("Register with the longest session timeout: %v", err)
	}
	if !strings.Contains(logs.String(), "ZooKeeper granted another session timeout") {
		t.Errorf("no warning of the clamp:\n%s", logs)
	}
}

// A member whose name does not resolve (a StatefulSet Pod being replaced)
// does not keep the service from starting and registering through the
// others: the client library failed Connect on it (report j47b).
func TestNew_AServerNameThatDoesNotResolveIsDialedInItsTurn(t *testing.T) {
	srv := startServer(t)
	r, _ := newTestRegistry(t, srv.Addr(), testRoot(t), WithServers(srv.Addr(), "zk-2.warren-test.invalid:2181"))
	if err := r.Register(ctxFor(t, time.Minute), testInstance("dns", 1)); err != nil {
		t.Fatalf("Register with one unresolvable member: %v", err)
	}
}
