package metrics_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// Several clients of one service with a snapshot directory (an HTTP and
// a gRPC client) share warren_client_discovery_stale{service}: it reads 1
// while any of them serves its snapshot. Before, the first client's Close
// set it to 0 while the other still served the stale snapshot.
func TestClient_DiscoveryStaleIsSharedByTheClientsOfAService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()

	// A client of the live registry leaves the service's snapshot.
	live := memory.New()
	defer live.Close()
	if err := live.Register(ctx, registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://127.0.0.1:1001"}}); err != nil {
		t.Fatal(err)
	}
	c0, err := client.New(ctx, live, "user", client.WithSnapshot(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	// The set reaches the file off the client's start (the snapshot's
	// writer goroutine): waited for, 10 s at most.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := os.Stat(filepath.Join(dir, "user.json"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot written by the first client in 10s: %v", err)
		}
	}
	c0.Close()

	// The registry is gone: the next clients serve the snapshot, and New
	// returns once the connect wait has announced it.
	down := memory.New()
	down.Close()
	prom := prometheus.NewRegistry()
	cm := metrics.NewClient(prom)
	want := func(step string, v float64) {
		t.Helper()
		if got, ok := gauge(t, prom, "warren_client_discovery_stale", map[string]string{"service": "user"}); !ok || got != v {
			t.Errorf("%s: discovery_stale = %v (exists %v), want %v", step, got, ok, v)
		}
	}
	c1, err := client.New(ctx, down, "user", client.WithSnapshot(dir), client.WithObserver(cm))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	want("one client serving the snapshot", 1)
	c2, err := client.New(ctx, down, "user", client.WithSnapshot(dir), client.WithObserver(cm))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	want("two clients serving the snapshot", 1)
	c1.Close()
	want("one closed, the other still serving the snapshot", 1)
	c2.Close()
	want("both closed", 0)
}
