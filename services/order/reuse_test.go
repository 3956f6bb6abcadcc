package order

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/services/user"
)

// A key whose record the idempotency store has forgotten (its retention
// passed) still names its order in the store, where the effect is kept
// for good: the same request sent again with it gets that order (no
// second one), another request is refused with ErrKeyReused. It used to
// get the first order — another user's or other items — as its own.
func TestCreate_KeyReusedAfterItsRecordWasForgottenIsRefused(t *testing.T) {
	forgetDir := func(dir string) func() {
		return func() { // what idemdir's sweep does once the retention passed
			des, err := os.ReadDir(filepath.Join(dir, ".keys"))
			if err != nil {
				t.Fatal(err)
			}
			for _, de := range des {
				if err := os.Remove(filepath.Join(dir, ".keys", de.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	dir := t.TempDir()
	ds, err := NewDirStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := NewMemoryStore()
	ms.MemoryStore = idempotency.NewMemoryStore(idempotency.DefaultClaimTTL) // the shortest retention
	for _, tc := range []struct {
		name   string
		store  Store
		forget func()
	}{
		{"dir", ds, forgetDir(dir)},
		{"memory", ms, func() { time.Sleep(idempotency.DefaultClaimTTL + 500*time.Millisecond) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := fakeUsers{users: map[string]user.User{"u-1": ada, "u-2": {ID: "u-2", Name: "Bob"}}}
			s := New(users, tc.store)
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			first := CreateRequest{UserID: "u-1", Items: []Item{{SKU: "a", Quantity: 1, PriceCents: 100}}}
			placed, err := s.Create(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			tc.forget()
			for _, other := range []CreateRequest{
				{UserID: "u-2", Items: first.Items},
				{UserID: "u-1", Items: []Item{{SKU: "b", Quantity: 9, PriceCents: 100}}},
			} {
				if o, err := s.Create(ctx, other); !errors.Is(err, idempotency.ErrKeyReused) {
					t.Fatalf("key reused for %+v after its record was forgotten: %+v, %v; want ErrKeyReused", other, o, err)
				}
			}
			if again, err := s.Create(ctx, first); err != nil || again.ID != placed.ID {
				t.Fatalf("the same request again: %+v, %v; want order %s", again, err, placed.ID)
			}
		})
	}
}
