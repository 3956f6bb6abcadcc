package zookeeper

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/zk"
)

// doc.go: a record that is not ephemeral (written by hand) would never
// expire, and one that does not match its znode is not what the path
// says, so instancers skip both and say so; the registrars' records
// beside them are served.
func TestInstancer_SkipsPersistentAndMismatchedRecords(t *testing.T) {
	root := testRoot(t)
	r, logs := newTestRegistry(t, shared.Addr(), root)
	live, byHand := testInstance("persist", 1), testInstance("persist", 2)
	if err := r.Register(ctxFor(t, 30*time.Second), live); err != nil {
		t.Fatal(err)
	}
	rec, err := registry.EncodeRecord(byHand)
	if err != nil {
		t.Fatal(err)
	}
	op := rawConn(t, shared.Addr())
	p := r.nodePath(byHand)
	if _, err := op.Create(p, rec, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create persistent %s: %v", p, err)
	}
	// An ephemeral znode (the operator's session) named persist-3 holding
	// persist-4's record.
	other, err := registry.EncodeRecord(testInstance("persist", 4))
	if err != nil {
		t.Fatal(err)
	}
	wrong := r.nodePath(testInstance("persist", 3))
	if _, err := op.Create(wrong, other, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create %s: %v", wrong, err)
	}
	w := watch(t, r, "persist")
	w.await(t, 30*time.Second, "the registered instance only", noErr(exactly(live.ID)))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "znode="+p+" err=") || !strings.Contains(logs.String(), "znode="+wrong+" err=") {
		if time.Now().After(deadline) {
			t.Fatalf("the records at %s and %s were not both reported skipped; log:\n%s", p, wrong, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if evs := w.Events(); len(evs[len(evs)-1].Instances) != 1 {
		t.Fatalf("instances %v; want only %s", evs[len(evs)-1].Instances, live.ID)
	}
}

// doc.go: a newer run of the instance (same address) replaces the znode
// at once; the old process, seeing its znode taken by its own address,
// stops re-registering (its state turns withdrawn) and never deletes the
// newer record, also when it is deregistered afterwards.
func TestSuperseded_TheOldRunStopsAndLeavesTheNewerZnode(t *testing.T) {
	root := testRoot(t)
	old, oldLogs := newTestRegistry(t, shared.Addr(), root)
	newer, _ := newTestRegistry(t, shared.Addr(), root)
	inst := testInstance("owned", 1)
	if err := old.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if err := newer.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatalf("a newer run of the same address: %v", err)
	}
	awaitState(t, old, registry.StateWithdrawn, 30*time.Second)
	if !strings.Contains(oldLogs.String(), "superseded") {
		t.Errorf("the old run's log does not say it was superseded:\n%s", oldLogs)
	}
	if err := old.Deregister(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatalf("old Deregister: %v", err)
	}
	p := newer.nodePath(inst)
	ok, st, err := rawConn(t, shared.Addr()).Exists(p)
	if err != nil || !ok || st.EphemeralOwner != newer.conn.SessionID() {
		t.Fatalf("after the old run stopped and deregistered: exists %v, owner %x (newer session %x), %v; want the newer run's znode kept",
			ok, ownerOf(st), newer.conn.SessionID(), err)
	}
	if s := newer.Status(); s.State != registry.StateRegistered {
		t.Fatalf("newer run's status %+v, want registered", s)
	}
}

func ownerOf(st *zk.Stat) int64 {
	if st == nil {
		return 0
	}
	return st.EphemeralOwner
}
