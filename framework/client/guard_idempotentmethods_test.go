package client

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// docs/client.md, Retries: "Idempotent calls are GET, HEAD, OPTIONS and
// any call made with client.Idempotent()"; any other method is retried
// only when the request surely never reached the service. A 502 may have
// been processed: three attempts for GET, HEAD and OPTIONS, one for POST,
// PUT, PATCH and DELETE. Taking OPTIONS or HEAD out of the idempotent
// methods, or adding DELETE, passed every other test.
func TestGuard_OnlyGetHeadAndOptionsAreIdempotentByDefault(t *testing.T) {
	for _, tc := range []struct {
		method string
		hits   int64
	}{
		{"GET", 3}, {"HEAD", 3}, {"OPTIONS", 3},
		{"POST", 1}, {"PUT", 1}, {"PATCH", 1}, {"DELETE", 1},
	} {
		t.Run(tc.method, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
			defer cancel()
			var bs []*backend
			var insts []registry.Instance
			for range 3 {
				b := startBackend(t, "", nil)
				b.mode.Store(mode502)
				bs = append(bs, b)
				insts = append(insts, b.inst)
			}
			c := newClient(t, newRegistry(t, insts...), WithoutOutlier(),
				WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging()))
			err := c.Invoke(ctx, tc.method, "/echo", nil, nil)
			if err == nil {
				t.Fatal("every instance answers 502: want an error")
			}
			var total int64
			for _, b := range bs {
				total += b.hits.Load()
			}
			if total != tc.hits {
				t.Fatalf("%s after a 502: %d attempts, want %d (err %v)", tc.method, total, tc.hits, err)
			}
		})
	}
}
