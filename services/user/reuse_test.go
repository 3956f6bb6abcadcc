package user

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// A key whose record the idempotency store has forgotten (its retention
// passed) still marks its user in the store, where it is kept for good:
// the same request sent again with it gets that user, and the address
// with another name is refused with ErrKeyReused. It used to answer the
// stored user — another name — as if it had been created by this call.
func TestCreate_KeyReusedAfterItsRecordWasForgottenIsRefused(t *testing.T) {
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
		{"dir", ds, func() { // what idemdir's sweep does once the retention passed
			des, err := os.ReadDir(filepath.Join(dir, ".keys"))
			if err != nil {
				t.Fatal(err)
			}
			for _, de := range des {
				if err := os.Remove(filepath.Join(dir, ".keys", de.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"memory", ms, func() { time.Sleep(idempotency.DefaultClaimTTL + 500*time.Millisecond) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.store)
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			first := CreateRequest{Name: "Ada", Email: "forgotten-" + tc.name + "@example.com"}
			created, err := s.Create(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			tc.forget()
			other := CreateRequest{Name: "Grace", Email: first.Email}
			if u, err := s.Create(ctx, other); !errors.Is(err, idempotency.ErrKeyReused) {
				t.Fatalf("key reused for %+v after its record was forgotten: %+v, %v; want ErrKeyReused", other, u, err)
			}
			if again, err := s.Create(ctx, first); err != nil || again.ID != created.ID {
				t.Fatalf("the same request again: %+v, %v; want user %s", again, err, created.ID)
			}
		})
	}
}
