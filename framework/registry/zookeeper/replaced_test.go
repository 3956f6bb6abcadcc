package zookeeper

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/zk"
)

// refuseCreates makes dir exist and let only the digest user op:pw create
// in it, so a Registry without that user keeps retrying its first claim
// (connected, refused: an operator may grant it) until grantCreates.
func refuseCreates(t *testing.T, op *zk.Conn, dir string) {
	t.Helper()
	acl := append(zk.DigestACL(zk.PermAll, "op", "pw"), zk.WorldACL(zk.PermRead)...)
	if _, err := op.SetACL(dir, acl, -1); err != nil {
		t.Fatalf("set the ACL of %s: %v", dir, err)
	}
}

func grantCreates(t *testing.T, op *zk.Conn, dir string) {
	t.Helper()
	if _, err := op.SetACL(dir, zk.WorldACL(zk.PermAll), -1); err != nil {
		t.Fatalf("set the ACL of %s: %v", dir, err)
	}
}

// A Register still waiting for its first claim when the same instance is
// registered again (a changed record, say) ends with an error; its
// clean-up deleted "its" znode — which, in the same session, is the one
// the newer registration had just written: the instance left discovery
// and came back as a re-registration. The clean-up must leave a znode a
// registration that took its place holds. Each round counts the child
// changes of the service's znode (its cversion): the newer registration's
// create is the only one.
func TestRegister_ReplacedWhileWaiting_LeavesTheNewerZnode(t *testing.T) {
	root := testRoot(t)
	op := rawConn(t, shared.Addr())
	if err := op.AddAuth("digest", []byte("op:pw")); err != nil {
		t.Fatal(err)
	}
	dir := root + "/services/repl"
	for _, p := range []string{root, root + "/services", dir} {
		if _, err := op.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	// A long backoff: the refused first claim is not tried again between
	// the grant and the newer Register.
	r, _ := newTestRegistry(t, shared.Addr(), root, WithBackoff(5*time.Second, 5*time.Second))
	const rounds = 40
	for round := range rounds {
		inst := testInstance("repl", round)
		refuseCreates(t, op, dir)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		first := make(chan error, 1)
		go func() { first <- r.Register(ctx, inst) }()
		deadline := time.Now().Add(30 * time.Second)
		for r.Status().State != registry.StateRetrying {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("round %d: the first Register was not refused within 30 s; status %+v", round, r.Status())
			}
			time.Sleep(10 * time.Millisecond)
		}
		grantCreates(t, op, dir)
		_, before, err := op.Get(dir)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		changed := inst
		changed.Zone = "zone-b"
		if err := r.Register(ctxFor(t, 30*time.Second), changed); err != nil {
			cancel()
			t.Fatalf("round %d: the newer Register: %v", round, err)
		}
		var ferr error
		select {
		case ferr = <-first:
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("round %d: the replaced Register did not return", round)
		}
		cancel()
		if ferr == nil {
			t.Logf("round %d: the first claim succeeded before it was replaced", round)
		}
		_, after, err := op.Get(dir)
		if err != nil {
			t.Fatal(err)
		}
		if n := after.Cversion - before.Cversion; n != 1 {
			t.Fatalf("round %d: %d child changes of %s after the newer Register and the replaced one's end (%v); want 1, its create: the replaced Register's clean-up deleted the newer znode",
				round, n, dir, ferr)
		}
		want, err := registry.EncodeRecord(changed)
		if err != nil {
			t.Fatal(err)
		}
		data, st, err := op.Get(r.nodePath(inst))
		if err != nil || st.EphemeralOwner != r.conn.SessionID() || !bytes.Equal(data, want) {
			t.Fatalf("round %d: znode %s: owner %x (ours %x), data %q, %v; want the newer record in our session",
				round, r.nodePath(inst), ownerOf(st), r.conn.SessionID(), data, err)
		}
	}
	if s := r.Status(); s.State != registry.StateRegistered || s.Reregistrations != 0 {
		t.Fatalf("status %+v; want registered, no re-registration", s)
	}
}

// Close while a Register waits for its first claim (connected, refused)
// ends that Register: it returns at once with an error, and its clean-up
// does not try to delete over the closed session until the close timeout
// runs out (it took the whole timeout, retrying a request the closed
// connection refuses).
func TestRegister_ClosedWhileWaiting_ReturnsAtOnce(t *testing.T) {
	root := testRoot(t)
	op := rawConn(t, shared.Addr())
	if err := op.AddAuth("digest", []byte("op:pw")); err != nil {
		t.Fatal(err)
	}
	dir := root + "/services/closing"
	for _, p := range []string{root, root + "/services", dir} {
		if _, err := op.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s: %v", p, err)
		}
	}
	refuseCreates(t, op, dir)
	// A close timeout far beyond the bound below: a clean-up that waits it
	// out cannot pass for a quick one.
	r, _ := newTestRegistry(t, shared.Addr(), root, WithCloseTimeout(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Register(ctx, testInstance("closing", 1)) }()
	deadline := time.Now().Add(30 * time.Second)
	for r.Status().State != registry.StateRetrying {
		if time.Now().After(deadline) {
			t.Fatalf("Register was not refused within 30 s; status %+v", r.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Register succeeded after Close")
		}
		t.Logf("Register after Close: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Register still running 20 s after Close (the close timeout is a minute)")
	}
}

// A Register that replaces the instance's record (a changed one) stops
// the registration it replaces; when it then ends unpublished while
// ZooKeeper is out of reach, the znode that registration wrote was left
// to the session ("it goes with the session"). A session outlives a short
// outage, and the znode with it: in discovery, kept by nobody, and out of
// Deregister's reach (it found nothing registered). Once the connection
// is back within the session, the znode must go.
func TestRegister_FailedReplacementDuringAShortOutage_LeavesNothingBehind(t *testing.T) {
	r, inst, healed := shortOutage(t, "short")
	changed := inst
	changed.Zone = "zone-b"
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := r.Register(ctx, changed)
	cancel()
	if err == nil {
		t.Fatal("Register succeeded while ZooKeeper was cut off")
	}
	healed()
	if err := r.Deregister(ctxFor(t, 10*time.Second), inst); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
}

// waitUntil polls cond every 10 ms until it holds, or fails the test
// after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Deregister while ZooKeeper is out of reach cannot delete the znode and
// says it "may remain until the session expires" — but a session
// outlives a short outage, and the znode stayed with it for as long as
// the process ran: an instance withdrawn (by its readiness watchdog, say)
// still in discovery, kept by nobody. Once the connection is back within
// the session, the znode must go.
func TestDeregister_DuringAShortOutage_TheZnodeGoesWhenTheConnectionIsBack(t *testing.T) {
	r, inst, healed := shortOutage(t, "dereg")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := r.Deregister(ctx, inst)
	cancel()
	if err == nil {
		t.Fatal("Deregister deleted the znode while ZooKeeper was cut off")
	}
	healed()
	if s := r.Status(); s.State != registry.StateWithdrawn {
		t.Fatalf("status %+v, want withdrawn", s)
	}
}

// shortOutage registers an instance of svc through a server of its own
// with a 10 s session (far longer than the outage: it survives it), cuts
// the connection and waits until the Registry has lost it. healed ends
// the outage, checks that the session survived it, and waits until the
// instance's znode is gone.
func shortOutage(t *testing.T, svc string) (r *Registry, inst registry.Instance, healed func()) {
	t.Helper()
	srv := startServer(t)
	r, _ = newTestRegistry(t, srv.Addr(), testRoot(t), WithSessionTimeout(10*time.Second))
	inst = testInstance(svc, 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	session := r.conn.SessionID()
	p := r.nodePath(inst)
	connectedIs := func(want bool) func() bool {
		return func() bool { _, c, _ := r.sess.state(); return c == want }
	}
	srv.Cut()
	waitUntil(t, 5*time.Second, "the connection lost", connectedIs(false))
	return r, inst, func() {
		t.Helper()
		srv.Heal()
		waitUntil(t, 8*time.Second, "the connection back", connectedIs(true))
		if got := r.conn.SessionID(); got != session {
			t.Fatalf("session %x after the outage, was %x: it was to survive", got, session)
		}
		direct := rawConn(t, srv.DirectAddr())
		waitUntil(t, 20*time.Second, p+" gone", func() bool {
			ok, _, err := direct.Exists(p)
			return err == nil && !ok
		})
	}
}
