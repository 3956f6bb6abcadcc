package order

import (
	"context"
	"errors"
	"testing"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/idempotency/idemtest"
	"github.com/warren-mesh/warren/services/user"
)

// sharedStore is a store that keeps the idempotency keys too (both of
// this package's do), so the paused instance and the other share them.
type sharedStore interface {
	Store
	idempotency.Store
}

// pausedStore is an instance's real store whose Create stops (as SIGSTOP
// stops the process) before or after the write: the gap between the order
// and Do's record of the answer.
type pausedStore struct {
	sharedStore
	pause *idemtest.Pause
	after bool
}

func (p pausedStore) Create(ctx context.Context, o Order, key string) (out Order, err error) {
	p.pause.Around(p.after, func() { out, err = p.sharedStore.Create(ctx, o, key) })
	return out, err
}

// An attempt of a keyed Create stopped before or after writing the order,
// whose claim a retry on the other instance takes over: the retry and the
// resumed attempt both answer the one order — never a second order for
// the call — and a later attempt gets it too; another key places another.
func TestCreate_AttemptStoppedMidCall_RetryAnswersTheSameOrder(t *testing.T) {
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
	users := fakeUsers{users: map[string]user.User{"u-1": ada}}
	for kind, pair := range map[string][2]sharedStore{"dir": {a, b}, "memory": {mem, mem}} {
		for _, when := range []string{"before", "after"} {
			t.Run(kind+"/stopped "+when+" the write", func(t *testing.T) {
				t.Parallel()
				stopped, other := pair[0], pair[1]
				p := idemtest.NewPause()
				first := New(users, pausedStore{sharedStore: stopped, pause: p, after: when == "after"})
				second := New(users, other)
				req := CreateRequest{UserID: "u-1", Items: []Item{{SKU: kind + "-" + when, Quantity: 1, PriceCents: 100}}}
				ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
				ans := idemtest.Takeover(t, p,
					func() (Order, error) { return first.Create(ctx, req) },
					func() (Order, error) { return second.Create(ctx, req) })
				if ans.RetryErr != nil || ans.StoppedErr != nil || ans.Retry.ID != ans.Stopped.ID {
					t.Fatalf("retry = %+v, %v; stopped attempt = %+v, %v; want one order for both", ans.Retry, ans.RetryErr, ans.Stopped, ans.StoppedErr)
				}
				if again, err := second.Create(ctx, req); err != nil || again.ID != ans.Retry.ID {
					t.Fatalf("a later attempt = %+v, %v; want order %s", again, err, ans.Retry.ID)
				}
				if n := ordersOfSKU(t, second, req.Items[0].SKU); n != 1 {
					t.Fatalf("%d orders placed by one keyed call, want 1", n)
				}
				otherKey := idempotency.NewContext(context.Background(), idempotency.NewKey())
				if o, err := second.Create(otherKey, req); err != nil || o.ID == ans.Retry.ID {
					t.Fatalf("another key = %+v, %v; want a new order", o, err)
				}
			})
		}
	}
}

func ordersOfSKU(t *testing.T, s *OrderService, sku string) int {
	t.Helper()
	page, err := s.List(context.Background(), ListRequest{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range page.Orders {
		if o.Items[0].SKU == sku {
			n++
		}
	}
	return n
}

// A key sent again with another request is refused, not answered with the
// first order: a reused key must not pass one order off as another.
func TestCreate_KeyReusedWithAnotherRequestIsRefused(t *testing.T) {
	s := New(fakeUsers{users: map[string]user.User{"u-1": ada}}, NewMemoryStore())
	ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
	first := CreateRequest{UserID: "u-1", Items: []Item{{SKU: "a", Quantity: 1, PriceCents: 100}}}
	if _, err := s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	other := CreateRequest{UserID: "u-1", Items: []Item{{SKU: "b", Quantity: 9, PriceCents: 100}}}
	if _, err := s.Create(ctx, other); !errors.Is(err, idempotency.ErrKeyReused) {
		t.Fatalf("same key, another order: err = %v, want ErrKeyReused", err)
	}
	if _, err := s.Create(ctx, first); err != nil {
		t.Fatalf("same key, same order: %v", err)
	}
}
