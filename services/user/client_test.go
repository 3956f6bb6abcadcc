package user

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
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

// A per-method fallback answers when the service cannot (here: every
// instance overloaded), never for a business error, and only for its
// method; the original client stays strict.
func TestClient_FallbackAnswersOnlyForItsMethodWhenTheServiceCannot(t *testing.T) {
	svc := New(NewMemoryStore())
	ada, err := svc.Create(context.Background(), CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var overloaded atomic.Bool
	h := NewHTTPHandler(MakeEndpoints(svc), log.NewNopLogger())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if overloaded.Load() {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"server overloaded, try another instance","code":"overloaded"}`)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := must(client.NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, ServiceName,
		client.WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond))))
	strict := NewClientFromEndpoints(MakeHTTPClientEndpoints(c), c)
	defer strict.Close()
	degraded := strict.WithFallbacks(Fallbacks{Get: func(_ context.Context, req GetRequest, err error) (User, error) {
		if !errors.Is(err, svcerr.ErrOverloaded) {
			t.Errorf("fallback got %v, want the overload answer", err)
		}
		return User{ID: req.ID}, nil
	}})
	ctx := context.Background()

	if got, err := degraded.Get(ctx, GetRequest{ID: ada.ID}); err != nil || got != ada {
		t.Fatalf("healthy: %+v, %v; want the real answer", got, err)
	}
	if _, err := degraded.Get(ctx, GetRequest{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown user: %v; a fallback must not mask ErrNotFound", err)
	}
	overloaded.Store(true)
	if got, err := degraded.Get(ctx, GetRequest{ID: ada.ID}); err != nil || got != (User{ID: ada.ID}) {
		t.Fatalf("overloaded, with fallback: %+v, %v; want the degraded answer", got, err)
	}
	if _, err := degraded.List(ctx, ListRequest{}); !errors.Is(err, svcerr.ErrOverloaded) {
		t.Fatalf("overloaded, method without fallback: %v; want the overload error", err)
	}
	if _, err := strict.Get(ctx, GetRequest{ID: ada.ID}); !errors.Is(err, svcerr.ErrOverloaded) {
		t.Fatalf("overloaded, original client: %v; want the overload error", err)
	}
	if err := degraded.Close(); err != nil {
		t.Fatal(err)
	}
}
