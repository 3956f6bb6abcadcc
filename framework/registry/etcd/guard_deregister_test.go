package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
)

// Deregister is bounded by WithCloseTimeout even when its ctx has no
// deadline (docs/registry-etcd.md: "Both are bounded by the ctx and
// WithCloseTimeout (3 s)"): a shutdown that withdraws while etcd is down
// must go on, and the record goes when the lease expires. Without the
// bound the guarded delete is retried until ctx ends, here never. The
// wait below is 30 times the close timeout: it judges whether Deregister
// returns, not how fast.
func TestGuard_DeregisterWithEtcdDownReturnsWithinTheCloseTimeout(t *testing.T) {
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithCloseTimeout(time.Second))
	inst := testInstance(8080)
	if err := r.Register(testCtx(t), inst); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Deregister(context.Background(), inst) }() // ends once etcd is back at the latest (below)
	select {
	case err := <-done:
		t.Logf("Deregister with etcd down: %v", err)
	case <-time.After(30 * time.Second):
		// Let the stuck Deregister finish before the cleanup closes r.
		if err := srv.Start(); err != nil {
			t.Errorf("restart etcd: %v", err)
		}
		<-done
		t.Fatal("Deregister with a ctx without deadline did not return within 30 s of etcd going down; want it bounded by WithCloseTimeout (1 s)")
	}
}
