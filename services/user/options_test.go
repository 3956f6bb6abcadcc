package user

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/jwtauth"
	"github.com/warren-mesh/warren/framework/ratelimit"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// guarded serves the user service with per-endpoint middleware, as a main
// would write it: Get needs a token with scope users:read, List is rate
// limited to one call per 1.5 s, Create waits for its caller's deadline.
// served counts requests through a server option of the generated
// transport.
func guarded(t *testing.T, key []byte, served *atomic.Int64) *Client {
	t.Helper()
	e := MakeEndpoints(New(NewMemoryStore()))
	auth := jwtauth.Middleware(func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"HS256"}))
	e.Get = auth(jwtauth.RequireScope("users:read")(e.Get))
	e.List = ratelimit.Middleware(rate.NewLimiter(rate.Every(1500*time.Millisecond), 1))(e.List)
	e.Create = func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			<-ctx.Done() // a slow store
			return nil, ctx.Err()
		}
	}(e.Create)
	count := kithttp.ServerFinalizer(func(context.Context, int, *http.Request) { served.Add(1) })
	srv := httptest.NewServer(NewHTTPHandler(e, log.NewNopLogger(), count))
	t.Cleanup(srv.Close)
	c := must(client.NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, ServiceName, client.WithoutOutlier()))
	users := NewClientFromEndpoints(MakeHTTPClientEndpoints(c), c)
	t.Cleanup(func() { users.Close() })
	return users
}

// TestGenerated_TokenPerCallReachesEndpointMiddleware: a header given per
// call (client.WithCallOptions) reaches the server's endpoint middleware
// through the request metadata; without it or without the scope the call
// fails with 401 or 403, and neither is retried.
func TestGenerated_TokenPerCallReachesEndpointMiddleware(t *testing.T) {
	key := []byte("k")
	var served atomic.Int64
	users := guarded(t, key, &served)
	sign := func(scope string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ada", "scope": scope, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name, auth string
		status     int
	}{
		{"no token", "", 401},
		{"other scope", sign("users:write"), 403},
		{"scope", sign("users:read"), 404}, // admitted: the user does not exist
	} {
		before := served.Load()
		cctx := ctx
		if c.auth != "" {
			cctx = client.WithCallOptions(ctx, client.Header("Authorization", c.auth))
		}
		_, err := users.Get(cctx, GetRequest{ID: "u-none"})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != c.status {
			t.Errorf("%s: err = %v, want status %d", c.name, err, c.status)
		}
		if n := served.Load() - before; n != 1 {
			t.Errorf("%s: served %d requests, want 1 (4xx are not retried)", c.name, n)
		}
	}
	if _, err := users.Get(client.WithCallOptions(ctx, client.Header("Authorization", sign("users:read"))), GetRequest{ID: "u-none"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("admitted call: err = %v, want ErrNotFound", err)
	}
}

// TestGenerated_RateLimitedCallIsRetriedAfterRetryAfter: the rate limit
// answers 429 with Retry-After; the generated client waits that long and
// its retry succeeds. With NoRetry per call the 429 comes back at once.
func TestGenerated_RateLimitedCallIsRetriedAfterRetryAfter(t *testing.T) {
	var served atomic.Int64
	users := guarded(t, []byte("k"), &served)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := users.List(ctx, ListRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := users.List(client.WithCallOptions(ctx, client.NoRetry()), ListRequest{})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 429 || ce.RetryAfter < time.Second || svcerr.KindOf(err) != svcerr.ResourceExhausted {
		t.Fatalf("NoRetry: err = %v, want a 429 with Retry-After ≥ 1 s", err)
	}
	before, start := served.Load(), time.Now()
	if _, err := users.List(ctx, ListRequest{}); err != nil {
		t.Fatalf("List after a 429: %v (the client should wait out Retry-After and retry)", err)
	}
	if n := served.Load() - before; n != 2 {
		t.Errorf("served %d requests, want 2 (a 429, then the retry)", n)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("retried after %v, before the server's Retry-After", el)
	}
}

// TestGenerated_PerCallTimeoutCutsTheCall: client.Timeout per call ends a
// call to a method that would wait for the caller's deadline.
func TestGenerated_PerCallTimeoutCutsTheCall(t *testing.T) {
	var served atomic.Int64
	users := guarded(t, []byte("k"), &served)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := users.Create(client.WithCallOptions(ctx, client.Timeout(300*time.Millisecond)), CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's own deadline ended first")
	}
}
