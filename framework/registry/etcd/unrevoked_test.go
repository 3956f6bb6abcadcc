package etcd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
)

// deregisterWhileDown registers an instance on its own etcd, stops etcd
// and deregisters: the delete and the revoke after it both fail.
func deregisterWhileDown(t *testing.T, ttl time.Duration) *Registry {
	t.Helper()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithTTL(ttl), WithCloseTimeout(time.Second),
		WithRequestTimeout(500*time.Millisecond))
	inst := testInstance(8080)
	if err := r.Register(testCtx(t), inst); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Deregister(testCtx(t), inst); err == nil {
		t.Fatal("Deregister with etcd stopped: err = nil, want the failed delete")
	}
	return r
}

// A lease Deregister could not revoke (etcd down at the stop) is Close's
// error, which an App logs as its release phase: Close found no
// registration left and said nothing, so the release line read err=none
// while the lease was alive (task H1).
func TestClose_ReportsALeaseDeregisterCouldNotRevoke(t *testing.T) {
	r := deregisterWhileDown(t, 30*time.Second)
	err := r.Close()
	if err == nil || !strings.Contains(err.Error(), "etcd: revoke lease ") {
		t.Fatalf("Close = %v, want the failed revoke (etcd: revoke lease …)", err)
	}
}

// A failed revoke older than the TTL has nothing left to revoke (the
// lease expired on its own): Close does not report it.
func TestClose_ForgetsAFailedRevokeOnceTheLeaseHasExpired(t *testing.T) {
	const ttl = time.Second
	r := deregisterWhileDown(t, ttl)
	waitFor(t, 10*time.Second, "the revoke after Deregister to fail", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.unrevoked) > 0
	})
	time.Sleep(ttl) // at least a TTL since the failure: the lease has expired
	if err := r.Close(); err != nil {
		t.Fatalf("Close = %v, want nil: the lease expired a TTL after its last keepalive", err)
	}
}

// A process whose watchdog withdraws again and again through a long etcd
// outage keeps only the failures Close could still report: those a TTL
// old are dropped as new ones arrive, so the list does not grow without
// bound.
func TestNoteUnrevoked_DropsFailuresATTLOld(t *testing.T) {
	r := &Registry{cfg: config{ttl: time.Hour}}
	old := time.Now().Add(-2 * time.Hour)
	for i := 0; i < 100; i++ {
		r.unrevoked = append(r.unrevoked, unrevoked{err: errors.New("old"), at: old})
	}
	r.noteUnrevoked(errors.New("etcd: revoke lease 7: unavailable"))
	if len(r.unrevoked) != 1 || r.unrevoked[0].err.Error() != "etcd: revoke lease 7: unavailable" {
		t.Fatalf("after a new failure: %d kept, want only the new one", len(r.unrevoked))
	}
	err := r.takeUnrevoked()
	if err == nil || err.Error() != "etcd: revoke lease 7: unavailable" {
		t.Fatalf("takeUnrevoked = %v, want the new failure alone", err)
	}
}
