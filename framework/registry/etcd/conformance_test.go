package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// TestConformance runs the registry suite against an embedded etcd of its
// own (the restart case stops and starts it on the same ports and data).
func TestConformance(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	prefix := testPrefix(t)
	// The suite holds a registration across three leases and wants a
	// withdrawal within half of one: a lease longer than testTTL keeps
	// that half generous on a loaded machine.
	const conformanceLease = 6 * time.Second
	registrytest.Run(t, registrytest.Harness{
		Lease: conformanceLease,
		Open: func(t testing.TB) registry.Registry {
			logs := &syncbuf.Buffer{}
			r, err := New(context.Background(),
				WithEndpoints(srv.Endpoints()...),
				WithPrefix(prefix),
				WithTTL(conformanceLease),
				WithBackoff(50*time.Millisecond, 500*time.Millisecond),
				WithDialTimeout(5*time.Second),
				WithRequestTimeout(5*time.Second),
				WithLogger(log.NewLogfmtLogger(logs)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("registry log:\n%s", logs)
				}
			})
			return r
		},
		Restart: func(t testing.TB) {
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
		},
	})
}
