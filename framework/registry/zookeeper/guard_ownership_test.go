package zookeeper

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/zk"
)

// docs/registry-zookeeper.md, Conflicts: "A persistent (non-ephemeral)
// znode at the instance's path was not written by a registrar and would
// never expire: it is replaced, with a warning." Its address differs
// from ours, so a Registry that treated it like a live session's record
// would refuse Register with ErrConflict, and the instance would never be
// discoverable while the stale record stays forever.
func TestRegister_APersistentZnodeAtOurPathIsReplacedWithAWarning(t *testing.T) {
	root := testRoot(t)
	r, logs := newTestRegistry(t, shared.Addr(), root)
	inst := testInstance("persisted", 1)
	stale := inst
	stale.Endpoints = []string{registry.EndpointURL("http", "127.0.0.1", 39999)}
	rec, err := registry.EncodeRecord(stale)
	if err != nil {
		t.Fatal(err)
	}
	op := rawConn(t, shared.Addr())
	p := r.nodePath(inst)
	for _, parent := range []string{root, root + "/services", root + "/services/persisted"} {
		if _, err := op.Create(parent, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatalf("create %s: %v", parent, err)
		}
	}
	if _, err := op.Create(p, rec, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create persistent %s: %v", p, err)
	}

	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatalf("Register over a persistent record of another address: %v; want it replaced", err)
	}
	data, stat, err := op.Get(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := registry.DecodeRecord(data)
	if err != nil || got.HostPort() != inst.HostPort() || stat.EphemeralOwner == 0 {
		t.Fatalf("znode after Register: %+v (%v), ephemeral owner %x; want our record in an ephemeral znode", got, err, stat.EphemeralOwner)
	}
	if !strings.Contains(logs.String(), "replacing a persistent record") {
		t.Fatalf("no warning about the replaced record; log:\n%s", logs)
	}
}

// docs/registry-zookeeper.md, Conflicts: "Deregister and Close delete a
// znode only if their own session holds it." Another live session takes
// our path with a record of another address, in one multi-op (delete
// ours, create theirs), so the registrar finds the path held and keeps
// retrying; Deregister then must leave that znode alone. A Deregister
// that deleted whatever stood at its path took the other process out of
// discovery.
func TestDeregister_LeavesAZnodeAnotherSessionHolds(t *testing.T) {
	root := testRoot(t)
	r, _ := newTestRegistry(t, shared.Addr(), root)
	inst := testInstance("held", 1)
	if err := r.Register(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	other := inst
	other.Endpoints = []string{registry.EndpointURL("http", "127.0.0.1", 39998)}
	rec, err := registry.EncodeRecord(other)
	if err != nil {
		t.Fatal(err)
	}
	op := rawConn(t, shared.Addr())
	p := r.nodePath(inst)
	_, stat, err := op.Get(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := op.Multi(
		&zk.DeleteRequest{Path: p, Version: stat.Version},
		&zk.CreateRequest{Path: p, Data: rec, Acl: zk.WorldACL(zk.PermAll), Flags: zk.FlagEphemeral},
	); err != nil {
		t.Fatalf("take %s over in another session: %v", p, err)
	}
	awaitState(t, r, registry.StateRetrying, 30*time.Second)

	if err := r.Deregister(ctxFor(t, 30*time.Second), inst); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	data, stat, err := op.Get(p)
	if err != nil {
		t.Fatalf("the other session's znode after our Deregister: %v; want it kept", err)
	}
	if got, err := registry.DecodeRecord(data); err != nil || got.HostPort() != other.HostPort() || stat.EphemeralOwner != op.SessionID() {
		t.Fatalf("znode after our Deregister: %+v (%v), owner %x; want the other session's (%x) record kept", got, err, stat.EphemeralOwner, op.SessionID())
	}
}
