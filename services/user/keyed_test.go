package user

import (
	"context"
	"testing"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// A keyed Create repeated with its key — a retry, here on a second
// instance sharing the store — answers the first call's user instead of
// creating another (or failing with "email taken"); a new key creates.
func TestCreate_SameKeyCreatesOnceAcrossInstances(t *testing.T) {
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
	for name, pair := range map[string][2]Store{"dir, two instances": {a, b}, "memory": {mem, mem}} {
		t.Run(name, func(t *testing.T) {
			first, second := New(pair[0]), New(pair[1])
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			u1, err := first.Create(ctx, CreateRequest{Name: "Ada", Email: "ada-" + name[:3] + "@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			u2, err := second.Create(ctx, CreateRequest{Name: "Ada", Email: "ada-" + name[:3] + "@example.com"})
			if err != nil || u2.ID != u1.ID {
				t.Fatalf("retry with the same key = %+v, %v; want the first user %s", u2, err, u1.ID)
			}
			list, err := first.List(context.Background(), ListRequest{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, u := range list.Users {
				if u.Email == u1.Email {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d users with the address after a retried keyed Create", n)
			}
			other := idempotency.NewContext(context.Background(), idempotency.NewKey())
			if _, err := second.Create(other, CreateRequest{Name: "Ada", Email: u1.Email}); err == nil {
				t.Fatal("a new key created a second user with a taken address")
			}
		})
	}
}
