package zookeeper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/keeper"
	"github.com/warren-mesh/warren/internal/zk"
)

// With digest auth the registrar's znodes are its user's: anyone may
// discover the service, nobody else may delete or overwrite a record or
// add one beside it, and a wrong password fails Register with an error
// that says so.
func TestDigestAuth_OthersReadButCannotWrite(t *testing.T) {
	root := testRoot(t)
	owner, _ := newTestRegistry(t, shared.Addr(), root, WithDigestAuth("warren", "s3cret"))
	inst := testInstance("auth", 1)
	if err := owner.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}

	// Discovery needs no credentials.
	reader, _ := newTestRegistry(t, shared.Addr(), root)
	w := watch(t, reader, "auth")
	w.await(t, 30*time.Second, "the instance, read without credentials", noErr(exactly(inst.ID)))

	// Nobody else may delete it: neither anonymous nor another user.
	anon := rawConn(t, shared.Addr())
	p := owner.nodePath(inst)
	if err := anon.Delete(p, -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("anonymous delete of %s: %v, want %v", p, err, zk.ErrNoAuth)
	}
	if _, err := anon.Set(p, []byte("junk"), -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("anonymous overwrite of %s: %v, want %v", p, err, zk.ErrNoAuth)
	}

	// A wrong password cannot register beside it, and is told so at once:
	// no retry makes it right (report j47b: it was retried until the
	// caller's deadline, forever by default, where etcd fails at once).
	wrong, _ := newTestRegistry(t, shared.Addr(), root, WithDigestAuth("warren", "guess"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // bounds a failing test only
	defer cancel()
	err := wrong.Register(ctx, testInstance("auth", 2))
	if err == nil {
		t.Fatal("Register with a wrong password succeeded")
	}
	if !errors.Is(err, keeper.ErrRefused) || ctx.Err() != nil || !strings.Contains(err.Error(), "not authenticated") ||
		!strings.Contains(err.Error(), "with another password: this one is wrong") {
		t.Errorf("Register with a wrong password: %v (status %+v); want the refusal at once, final", err, wrong.Status())
	}
	// No digest auth at all: the refusal says to give this process the
	// user, not that the mesh must share one (report j47b).
	anonReg, _ := newTestRegistry(t, shared.Addr(), root)
	actx, acancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer acancel()
	err = anonReg.Register(actx, testInstance("auth", 3))
	if err == nil || !strings.Contains(err.Error()+anonReg.Status().LastError, "this process has no digest auth: give it that user (--zookeeper-username") {
		t.Errorf("Register without digest auth: %v (status %+v); want the hint to set a user", err, anonReg.Status())
	}
	w.await(t, 10*time.Second, "still only the owner's instance", noErr(exactly(inst.ID)))

	// The owner still withdraws its own record.
	if err := owner.Deregister(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	w.await(t, 30*time.Second, "the instance withdrawn by its owner", noErr(exactly()))
	if got := owner.Status().State; got != registry.StateWithdrawn {
		t.Errorf("owner Status = %s, want withdrawn", got)
	}
}

// With one digest user per service, the first service makes the shared
// parents (<root>, <root>/services) with its own user's ACL, and every
// other service's user is refused creating its service's znode beside
// them. The refusal must say which znode's ACL refused, and that another
// digest user made it — not only "zk: not authenticated", retried forever
// — and once an operator grants create on <root>/services to the second
// user (the documented way out), it registers: only the missing parents
// are created, none that exists (ZooKeeper checks create on <root>, the
// first user's, even for a <root>/services that exists).
func TestDigestAuth_OneUserPerService_RefusalNamesTheParentsOwner(t *testing.T) {
	root := testRoot(t)
	alice, _ := newTestRegistry(t, shared.Addr(), root, WithDigestAuth("alice", "a-pass"))
	if err := alice.Register(ctxFor(t, 30*time.Second), testInstance("alpha", 1)); err != nil {
		t.Fatal(err)
	}

	bob, _ := newTestRegistry(t, shared.Addr(), root, WithDigestAuth("bob", "b-pass"))
	beta := testInstance("beta", 1)
	ctx, cancel := context.WithCancel(ctxFor(t, 2*time.Minute))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- bob.Register(ctx, beta) }()
	services := root + "/services"
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(bob.Status().LastError, "not authenticated") {
		select {
		case err := <-done:
			t.Fatalf("bob's Register ended before it was refused: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bob's Register not refused within a minute; status %+v", bob.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	last := bob.Status().LastError
	t.Logf("bob refused: %s", last)
	for _, want := range []string{
		"the ACL of " + services + " (digest:alice=cdrwa, world:anyone=r)",
		`does not let digest user "bob" create in it`,
		`it lets only digest user "alice" create in it (another service made it as that user)`,
		"one digest user",
	} {
		if !strings.Contains(last, want) {
			t.Errorf("bob's refusal %q does not say %q", last, want)
		}
	}
	if strings.Contains(last, "a-pass") || strings.Contains(last, "b-pass") {
		t.Errorf("the refusal shows a password: %q", last)
	}

	// The operator's way out: <root>/services grants create to bob too.
	op := rawConn(t, shared.Addr())
	if err := op.AddAuth("digest", []byte("alice:a-pass")); err != nil {
		t.Fatal(err)
	}
	acl := append(zk.DigestACL(zk.PermAll, "alice", "a-pass"), zk.DigestACL(zk.PermCreate, "bob", "b-pass")...)
	if _, err := op.SetACL(services, append(acl, zk.WorldACL(zk.PermRead)...), -1); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("bob's Register after create was granted on %s: %v", services, err)
	}
	reader, _ := newTestRegistry(t, shared.Addr(), root)
	watch(t, reader, "beta").await(t, 30*time.Second, "bob's instance", noErr(exactly(beta.ID)))
	// beta's znode is bob's: alice cannot delete it.
	if err := op.Delete(bob.nodePath(beta), -1); !errors.Is(err, zk.ErrNoAuth) {
		t.Errorf("alice's delete of bob's record: %v, want %v", err, zk.ErrNoAuth)
	}
}
