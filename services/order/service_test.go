package order

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/services/user"
)

// fakeUsers answers Get from a map, or fails with err when set.
type fakeUsers struct {
	users map[string]user.User
	err   error
}

func (f fakeUsers) Get(_ context.Context, req user.GetRequest) (user.User, error) {
	if f.err != nil {
		return user.User{}, f.err
	}
	u, ok := f.users[req.ID]
	if !ok {
		return user.User{}, fmt.Errorf("user %q: %w", req.ID, user.ErrNotFound)
	}
	return u, nil
}

var ada = user.User{ID: "u-1", Name: "Ada"}

func TestCreate_ForKnownUserTotalsItems(t *testing.T) {
	s := New(fakeUsers{users: map[string]user.User{"u-1": ada}}, NewMemoryStore())
	o, err := s.Create(context.Background(), CreateRequest{UserID: "u-1", Items: []Item{{SKU: "book", Quantity: 2, PriceCents: 1250}, {SKU: "pen", Quantity: 1, PriceCents: 99}}})
	if err != nil {
		t.Fatal(err)
	}
	if o.TotalCents != 2599 || o.UserName != "Ada" || o.ID == "" {
		t.Fatalf("order %+v", o)
	}
	got, err := s.Get(context.Background(), GetRequest{ID: o.ID})
	if err != nil || got.ID != o.ID {
		t.Fatalf("Get = %+v, %v", got, err)
	}
}

func TestCreate_UnknownUserIsAClearFailedPrecondition(t *testing.T) {
	s := New(fakeUsers{users: map[string]user.User{}}, NewMemoryStore())
	_, err := s.Create(context.Background(), CreateRequest{UserID: "u-404", Items: []Item{{SKU: "a", Quantity: 1}}})
	if !errors.Is(err, ErrUnknownUser) || !strings.Contains(err.Error(), `user "u-404" does not exist`) {
		t.Fatalf("err = %v", err)
	}
}

func TestCreate_UserServiceDownIsUnavailableAndNothingStored(t *testing.T) {
	store := NewMemoryStore()
	s := New(fakeUsers{err: errors.New("dial tcp 127.0.0.1:1: connection refused")}, store)
	_, err := s.Create(context.Background(), CreateRequest{UserID: "u-1", Items: []Item{{SKU: "a", Quantity: 1}}})
	if !errors.Is(err, ErrUserServiceUnavailable) || svcerr.KindOf(err) != svcerr.Unavailable || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
	// The cause is order's to log; order's callers read the message alone.
	if got := svcerr.Public(err); got != "user service unavailable, order not placed" {
		t.Fatalf("callers would read %q", got)
	}
	if page, _ := s.List(context.Background(), ListRequest{}); len(page.Orders) != 0 {
		t.Fatalf("stored %d orders", len(page.Orders))
	}
}

func TestCreate_InvalidOrderNamesEveryProblem(t *testing.T) {
	s := New(fakeUsers{}, NewMemoryStore())
	_, err := s.Create(context.Background(), CreateRequest{Items: []Item{{SKU: "", Quantity: 1}, {SKU: "x", Quantity: 0}, {SKU: "y", Quantity: 1, PriceCents: -5}}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"user_id must not be empty", "item 1: sku", "item 2 (x): quantity 0", "item 3 (y): price_cents -5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestList_FiltersByUserAndPages(t *testing.T) {
	dir, err := NewDirStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]Store{"memory": NewMemoryStore(), "dir": dir} {
		t.Run(name, func(t *testing.T) {
			users := fakeUsers{users: map[string]user.User{"u-1": ada, "u-2": {ID: "u-2", Name: "Bob"}}}
			s := New(users, st)
			ctx := context.Background()
			for i := range 6 {
				uid := []string{"u-1", "u-2"}[i%2]
				if _, err := s.Create(ctx, CreateRequest{UserID: uid, Items: []Item{{SKU: "a", Quantity: 1}}}); err != nil {
					t.Fatal(err)
				}
			}
			var got int
			req := ListRequest{UserID: "u-2", Limit: 2}
			for range 10 {
				page, err := s.List(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, o := range page.Orders {
					if o.UserID != "u-2" {
						t.Fatalf("order of %s in u-2's list", o.UserID)
					}
				}
				got += len(page.Orders)
				if page.Next == "" {
					break
				}
				req.After = page.Next
			}
			if got != 3 {
				t.Fatalf("listed %d orders of u-2, want 3", got)
			}
		})
	}
}

// usersFunc adapts a function to Users.
type usersFunc func(context.Context, user.GetRequest) (user.User, error)

func (f usersFunc) Get(ctx context.Context, req user.GetRequest) (user.User, error) {
	return f(ctx, req)
}

func TestRead_NamesAreCurrentAndDegradeOnlyThroughTheFallback(t *testing.T) {
	store := NewMemoryStore()
	users := fakeUsers{users: map[string]user.User{"u-1": ada}}
	o, err := New(users, store).Create(context.Background(), CreateRequest{UserID: "u-1", Items: []Item{{SKU: "a", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	renamed := fakeUsers{users: map[string]user.User{"u-1": {ID: "u-1", Name: "Ada L."}}}
	if got, err := New(users, store, WithNames(renamed)).Get(context.Background(), GetRequest{ID: o.ID}); err != nil || got.UserName != "Ada L." {
		t.Fatalf("Get after a rename: %+v, %v; want the current name", got, err)
	}

	down := fakeUsers{err: svcerr.New(svcerr.Unavailable, "", "3 attempts failed")}
	if _, err := New(users, store, WithNames(down)).List(context.Background(), ListRequest{}); !errors.Is(err, ErrUserServiceUnavailable) {
		t.Fatalf("List with the user service down and no fallback: %v, want ErrUserServiceUnavailable", err)
	}
	degraded := usersFunc(func(ctx context.Context, req user.GetRequest) (user.User, error) {
		return fallback.Call(ctx, req, down.Get, func(_ context.Context, r user.GetRequest, _ error) (user.User, error) {
			return user.User{ID: r.ID}, nil
		})
	})
	page, err := New(users, store, WithNames(degraded)).List(context.Background(), ListRequest{})
	if err != nil || len(page.Orders) != 1 || page.Orders[0].UserName != "" || page.Orders[0].UserID != "u-1" {
		t.Fatalf("List through the fallback: %+v, %v; want the order without a name", page, err)
	}
}

// IDs a client sends are limited before they reach a store or another
// service, and a user ID the user service refuses is the caller's fault
// (422 unknown user), not an outage (503).
func TestCreateGet_OverlongOrRefusedIDsAreClientErrors(t *testing.T) {
	s := New(fakeUsers{err: fmt.Errorf("user: %w", user.ErrInvalid)}, NewMemoryStore())
	ctx := context.Background()
	long := strings.Repeat("u", 300)
	if _, err := s.Create(ctx, CreateRequest{UserID: long, Items: []Item{{SKU: "a", Quantity: 1}}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "at most 128") {
		t.Errorf("300-byte user_id: %v", err)
	}
	if _, err := s.Get(ctx, GetRequest{ID: long}); !errors.Is(err, ErrInvalid) {
		t.Errorf("300-byte id: %v", err)
	}
	if _, err := s.Create(ctx, CreateRequest{UserID: "x\x00y", Items: []Item{{SKU: "a", Quantity: 1}}}); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("user ID refused by the user service: %v, want ErrUnknownUser", err)
	}
}

// A caller whose deadline passes while order waits on user gets its
// deadline back, not "user service unavailable": order did not fail
// (report j50c: order's access log said Unavailable for a caller's
// 700 ms deadline).
func TestCreate_CallersDeadlineIsNotAnOutage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := New(fakeUsers{err: fmt.Errorf("client user: %w", context.Canceled)}, NewMemoryStore())
	_, err := s.Create(ctx, CreateRequest{UserID: "u-1", Items: []Item{{SKU: "a", Quantity: 1}}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUserServiceUnavailable) {
		t.Fatalf("err = %v; want the caller's context.Canceled, not user_service_unavailable", err)
	}
	err = s.fillNames(ctx, []Order{{ID: "o-1", UserID: "u-1"}})
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUserServiceUnavailable) {
		t.Fatalf("naming: err = %v; want the caller's context.Canceled", err)
	}
}
