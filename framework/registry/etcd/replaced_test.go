package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
)

// A Register that replaces the instance's record (a changed one) stops
// the registration it replaces and takes over its lease, which holds the
// old record. When it then failed (its ctx ended while etcd was out of
// reach) it was dropped with that lease: nothing kept the record, nothing
// revoked it, not even Close — the process closed its Registry and its
// old record stayed in discovery for a TTL ("we vanish at once, not after
// the TTL"). The lease must be revoked once etcd answers, and Close must
// wait for that.
func TestRegister_FailedReplacement_TheReplacedRecordIsRevoked(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// A TTL far longer than the test: etcd keeps the lease a TTL past its
	// restart, so the record can only go by a revoke.
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithTTL(time.Minute), WithCloseTimeout(20*time.Second))
	inst := testInstance(8080)
	if err := r.Register(testCtx(t), inst); err != nil {
		t.Fatal(err)
	}
	key := r.key(inst)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	changed := inst
	changed.Zone = "zone-b"
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = r.Register(ctx, changed)
	cancel()
	if err == nil {
		t.Fatal("Register succeeded while etcd was down")
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Logf("Close: %v", err)
	}
	if l := leaseOf(t, rawClient(t, srv), key); l != -1 {
		t.Fatalf("%s still held (lease %x) after the replacing Register failed and the Registry was closed", key, l)
	}
}
