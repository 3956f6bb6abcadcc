package zookeeper

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
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

	// A wrong password cannot register beside it.
	wrong, _ := newTestRegistry(t, shared.Addr(), root, WithDigestAuth("warren", "guess"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := wrong.Register(ctx, testInstance("auth", 2))
	if err == nil {
		t.Fatal("Register with a wrong password succeeded")
	}
	if st := wrong.Status(); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(st.LastError+err.Error(), "not authenticated") {
		t.Errorf("Register with a wrong password: %v (status %+v); want a deadline error naming the refusal", err, st)
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
