package fallback

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
)

var (
	errNotFound = svcerr.New(svcerr.NotFound, "user_not_found", "user not found")
	errDown     = fmt.Errorf("3 attempts failed: %w", svcerr.ErrOverloaded)
)

func TestDegradable(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errDown, true},
		{svcerr.New(svcerr.DeadlineExceeded, "", ""), true},
		{svcerr.New(svcerr.ResourceExhausted, "", ""), true},
		{svcerr.New(svcerr.Unimplemented, "not_implemented", "Refund is not implemented yet"), true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{fmt.Errorf("get: %w", errNotFound), false},
		{svcerr.New(svcerr.InvalidArgument, "", ""), false},
		{svcerr.New(svcerr.PermissionDenied, "", ""), false},
		{fmt.Errorf("call: %w", context.Canceled), false},
	}
	for _, tc := range cases {
		if got := Degradable(tc.err); got != tc.want {
			t.Errorf("Degradable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

type req struct{ ID string }
type resp struct{ ID, Name string }

func failing(err error) func(context.Context, req) (resp, error) {
	return func(context.Context, req) (resp, error) { return resp{}, err }
}

func TestCall_FallsBackOnlyForDegradableErrors(t *testing.T) {
	ran := 0
	f := func(_ context.Context, r req, err error) (resp, error) {
		ran++
		if !errors.Is(err, svcerr.ErrOverloaded) {
			t.Errorf("fallback got %v, want the call's error", err)
		}
		return resp{ID: r.ID}, nil
	}
	got, err := Call(context.Background(), req{ID: "7"}, failing(errDown), f)
	if err != nil || got.ID != "7" || ran != 1 {
		t.Fatalf("got %+v, %v after %d fallbacks; want the degraded answer", got, err, ran)
	}
	if _, err := Call(context.Background(), req{ID: "7"}, failing(errNotFound), f); !errors.Is(err, errNotFound) || ran != 1 {
		t.Fatalf("not found: err %v, fallbacks %d; want the business error and no fallback", err, ran)
	}
	if _, err := Call(context.Background(), req{ID: "7"}, failing(errDown), nil); !errors.Is(err, svcerr.ErrOverloaded) {
		t.Fatalf("nil fallback: err %v, want the call's error", err)
	}
}

func TestMiddleware_FallsBackForTheEndpoint(t *testing.T) {
	ep := Middleware(func(_ context.Context, r req, _ error) (resp, error) {
		return resp{ID: r.ID, Name: "?"}, nil
	})(func(context.Context, any) (any, error) { return nil, errDown })
	got, err := ep(context.Background(), req{ID: "9"})
	if err != nil || got.(resp) != (resp{ID: "9", Name: "?"}) {
		t.Fatalf("got %v, %v; want the degraded answer", got, err)
	}
}

func TestCached_ServesTheLastGoodAnswerThenTheFallback(t *testing.T) {
	cache := NewCache[string, resp](10, time.Hour)
	c := NewCached(cache, func(r req) string { return r.ID }, func(_ context.Context, r req, _ error) (resp, error) {
		return resp{ID: r.ID}, nil
	})
	up := func(_ context.Context, r req) (resp, error) { return resp{ID: r.ID, Name: "Ann"}, nil }
	if _, err := c.Call(context.Background(), req{ID: "1"}, up); err != nil {
		t.Fatal(err)
	}
	get := c.Wrap(failing(errDown))
	if got, err := get(context.Background(), req{ID: "1"}); err != nil || got.Name != "Ann" {
		t.Fatalf("cached key while down: %+v, %v; want the last good answer", got, err)
	}
	if got, err := get(context.Background(), req{ID: "2"}); err != nil || got != (resp{ID: "2"}) {
		t.Fatalf("uncached key while down: %+v, %v; want the degraded answer", got, err)
	}
	if _, err := c.Call(context.Background(), req{ID: "1"}, failing(errNotFound)); !errors.Is(err, errNotFound) {
		t.Fatalf("business error: %v, want it through, not the cache", err)
	}
}

func TestCache_ExpiresAndBoundsEntries(t *testing.T) {
	c := NewCache[int, int](2, 0)
	for i := range 5 {
		c.Put(i, i)
	}
	if c.Len() != 2 {
		t.Fatalf("len %d, want the bound 2", c.Len())
	}
	if _, ok := c.Get(0); ok {
		t.Fatal("the oldest entry survived past the bound")
	}
	short := NewCache[int, int](10, 20*time.Millisecond)
	short.Put(1, 1)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := short.Get(1); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an entry with a 20ms ttl still there after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The middleware covers what Call covers and nothing more: a business
// answer goes through untouched, and so does a request of another type.
func TestMiddleware_LeavesBusinessErrorsAlone(t *testing.T) {
	ran := 0
	mw := Middleware(func(_ context.Context, r req, _ error) (resp, error) { ran++; return resp{ID: r.ID}, nil })
	if _, err := mw(func(context.Context, any) (any, error) { return nil, errNotFound })(context.Background(), req{ID: "9"}); !errors.Is(err, errNotFound) {
		t.Fatalf("not found: err %v, want it through", err)
	}
	if _, err := mw(func(context.Context, any) (any, error) { return nil, errDown })(context.Background(), "not a req"); !errors.Is(err, svcerr.ErrOverloaded) {
		t.Fatalf("foreign request type: err %v, want the call's error", err)
	}
	if ran != 0 {
		t.Fatalf("fallback ran %d times, want 0", ran)
	}
}

// NewCache's size is at least 1: a size of 0 keeps one answer, not an
// unbounded number.
func TestNewCache_SizeAtLeastOne(t *testing.T) {
	c := NewCache[int, int](0, 0)
	for i := range 3 {
		c.Put(i, i)
	}
	if c.Len() != 1 {
		t.Fatalf("len %d, want 1", c.Len())
	}
	if v, ok := c.Get(2); !ok || v != 2 {
		t.Fatalf("Get(2) = %d, %v; want the newest answer kept", v, ok)
	}
}
