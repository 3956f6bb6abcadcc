package user

import (
	"context"
	"errors"
	"testing"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/idempotency/idemtest"
)

// A keyed Create repeated with its key — a retry, here on a second
// instance sharing the store — answers the first call's user instead of
// creating another (or failing with "email taken"); a new key creates.
func TestCreate_SameKeyCreatesOnceAcrossInstances(t *testing.T) {
	for name, pair := range instances(t) {
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
			if n := usersWithEmail(t, first, u1.Email); n != 1 {
				t.Fatalf("%d users with the address after a retried keyed Create", n)
			}
			other := idempotency.NewContext(context.Background(), idempotency.NewKey())
			if _, err := second.Create(other, CreateRequest{Name: "Ada", Email: u1.Email}); err == nil {
				t.Fatal("a new key created a second user with a taken address")
			}
		})
	}
}

// A key sent again with another request is refused (422
// idempotency_key_reused on HTTP), on any instance: the second request is
// not the call the key was made for, and answering it the first user
// would pass one person's account off as another's.
func TestCreate_KeyReusedWithAnotherRequestIsRefused(t *testing.T) {
	for name, pair := range instances(t) {
		t.Run(name, func(t *testing.T) {
			first, second := New(pair[0]), New(pair[1])
			ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
			if _, err := first.Create(ctx, CreateRequest{Name: "Ada", Email: "reuse-" + name + "@example.com"}); err != nil {
				t.Fatal(err)
			}
			_, err := second.Create(ctx, CreateRequest{Name: "Grace", Email: "grace-" + name + "@example.com"})
			if !errors.Is(err, idempotency.ErrKeyReused) {
				t.Fatalf("same key, another user: err = %v, want ErrKeyReused", err)
			}
			if n := usersWithEmail(t, first, "grace-"+name+"@example.com"); n != 0 {
				t.Fatalf("%d users created by the reused key", n)
			}
		})
	}
}

// pausedStore is an instance's real store whose Create stops (as SIGSTOP
// stops the process) before or after the write: the gap between the user
// and Do's record of the answer.
type pausedStore struct {
	sharedStore
	pause *idemtest.Pause
	after bool
}

// sharedStore is a store that keeps the idempotency keys too (both of
// this package's do), so the paused instance and the other share them.
type sharedStore interface {
	Store
	idempotency.Store
}

func (p pausedStore) Create(ctx context.Context, u User, key string) (out User, err error) {
	p.pause.Around(p.after, func() { out, err = p.sharedStore.Create(ctx, u, key) })
	return out, err
}

// instances returns, per kind of store, the stores of two instances that
// share it: two DirStores on one directory, or one MemoryStore.
func instances(t *testing.T) map[string][2]sharedStore {
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
	return map[string][2]sharedStore{"dir": {a, b}, "memory": {mem, mem}}
}

// An attempt of a keyed Create stopped before or after writing the user,
// whose claim a retry on the other instance takes over (the fault run's
// SIGSTOP): the retry and the resumed attempt both answer the one user —
// not 409 email_taken, not a second user — and a later attempt gets it
// too; another key with the address still gets ErrEmailTaken.
func TestCreate_AttemptStoppedMidCall_RetryAnswersTheSameUser(t *testing.T) {
	for kind, pair := range instances(t) {
		for _, when := range []string{"before", "after"} {
			t.Run(kind+"/stopped "+when+" the write", func(t *testing.T) {
				t.Parallel()
				stopped, other := pair[0], pair[1]
				p := idemtest.NewPause()
				first := New(pausedStore{sharedStore: stopped, pause: p, after: when == "after"})
				second := New(other)
				req := CreateRequest{Name: "Ada", Email: "ada-" + kind + "-" + when + "@example.com"}
				ctx := idempotency.NewContext(context.Background(), idempotency.NewKey())
				ans := idemtest.Takeover(t, p,
					func() (User, error) { return first.Create(ctx, req) },
					func() (User, error) { return second.Create(ctx, req) })
				if ans.RetryErr != nil || ans.StoppedErr != nil || ans.Retry.ID != ans.Stopped.ID {
					t.Fatalf("retry = %+v, %v; stopped attempt = %+v, %v; want one user for both", ans.Retry, ans.RetryErr, ans.Stopped, ans.StoppedErr)
				}
				if again, err := second.Create(ctx, req); err != nil || again.ID != ans.Retry.ID {
					t.Fatalf("a later attempt = %+v, %v; want user %s", again, err, ans.Retry.ID)
				}
				if n := usersWithEmail(t, second, ans.Retry.Email); n != 1 {
					t.Fatalf("%d users with the address, want 1", n)
				}
				otherKey := idempotency.NewContext(context.Background(), idempotency.NewKey())
				if _, err := second.Create(otherKey, req); !errors.Is(err, ErrEmailTaken) {
					t.Fatalf("another key with the address = %v, want ErrEmailTaken", err)
				}
			})
		}
	}
}

func usersWithEmail(t *testing.T, s *UserService, email string) int {
	t.Helper()
	list, err := s.List(context.Background(), ListRequest{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range list.Users {
		if u.Email == email {
			n++
		}
	}
	return n
}
