package user

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/client"
)

// The generated client goes through one go-kit endpoint per method, so a
// middleware wraps one method and no other, as on the server side.
func TestClient_PerMethodMiddlewareWrapsOnlyItsMethod(t *testing.T) {
	srv := httptest.NewServer(NewHTTPHandler(MakeEndpoints(New(NewMemoryStore())), log.NewNopLogger()))
	defer srv.Close()
	c := must(client.NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, ServiceName))
	var gets, all atomic.Int64
	count := func(n *atomic.Int64) endpoint.Middleware {
		return func(next endpoint.Endpoint) endpoint.Endpoint {
			return func(ctx context.Context, req any) (any, error) {
				n.Add(1)
				return next(ctx, req)
			}
		}
	}
	e := MakeHTTPClientEndpoints(c, count(&all))
	e.Get = count(&gets)(e.Get)
	users := NewClientFromEndpoints(e, c)
	defer users.Close()

	ctx := context.Background()
	u, err := users.Create(ctx, CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := users.Get(ctx, GetRequest{ID: u.ID})
	if err != nil || got != u {
		t.Fatalf("Get = %+v, %v; want %+v", got, err, u)
	}
	if _, err := users.Get(ctx, GetRequest{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) = %v, want ErrNotFound through the endpoint", err)
	}
	if _, err := users.List(ctx, ListRequest{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if gets.Load() != 2 || all.Load() != 4 {
		t.Fatalf("Get middleware saw %d calls (want 2), the all-method one %d (want 4)", gets.Load(), all.Load())
	}
}
