package order

import (
	"context"
	"errors"
	"testing"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/idempotency/idemtest"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/services/user"
)

// An attempt of a keyed Create stopped after it placed the order, before
// its answer was recorded; the retry that takes its claim over finds the
// user service down. The order is placed, so the retry answers it: it
// used to answer 503 user_service_unavailable, "order not placed", which
// tells the caller to place it again — under a new key, a second order.
func TestCreate_RetryOfAPlacedOrderAnswersItWhileUserIsDown(t *testing.T) {
	dir := t.TempDir()
	a, err := NewDirStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewDirStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	mem := NewMemoryStore()
	down := fakeUsers{err: svcerr.New(svcerr.Unavailable, "no_instances", "no user instance answers")}
	for kind, pair := range map[string][2]sharedStore{"dir": {a, b}, "memory": {mem, mem}} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			p := idemtest.NewPause()
			first := New(fakeUsers{users: map[string]user.User{"u-1": ada}}, pausedStore{sharedStore: pair[0], pause: p, after: true})
			second := New(down, pair[1])
			req := CreateRequest{UserID: "u-1", Items: []Item{{SKU: "placed-" + kind, Quantity: 1, PriceCents: 100}}}
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			ans := idemtest.Takeover(t, p,
				func() (Order, error) { return first.Create(ctx, req) },
				func() (Order, error) { return second.Create(ctx, req) })
			if ans.StoppedErr != nil {
				t.Fatalf("stopped attempt: %v", ans.StoppedErr)
			}
			if ans.RetryErr != nil || ans.Retry.ID != ans.Stopped.ID {
				t.Fatalf("retry while user is down = %+v, %v; want the placed order %s", ans.Retry, ans.RetryErr, ans.Stopped.ID)
			}
			// Another request under the key is refused, user down or not.
			other := CreateRequest{UserID: "u-1", Items: []Item{{SKU: "other", Quantity: 2, PriceCents: 100}}}
			if _, err := second.Create(ctx, other); !errors.Is(err, idempotency.ErrKeyReused) {
				t.Fatalf("key reused with another request: %v, want ErrKeyReused", err)
			}
		})
	}
}
