package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/retry"
)

// Options in the context are applied after the call's own arguments, so
// the caller's WithCallOptions wins; an inner WithCallOptions keeps the
// outer one's options that it does not override.
func TestCall_ContextOptionsWinAndKeepOuterOnes(t *testing.T) {
	b := startStatusBackend(t, http.StatusOK)
	c := newClient(t, newRegistry(t, b.inst))
	ctx := WithCallOptions(context.Background(), Header("X-Tenant", "from-ctx"))
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}, Header("X-Tenant", "from-arg")); err != nil {
		t.Fatal(err)
	}
	if got := b.tenant.Load(); got != "from-ctx" {
		t.Errorf("X-Tenant = %q, want from-ctx (the context's options win over the call's arguments)", got)
	}
	outer := WithCallOptions(context.Background(), Header("X-Tenant", "outer"))
	inner := WithCallOptions(outer, Timeout(time.Minute))
	if _, err := Call[echoReq, echoResp](inner, c, "GET", "/x", echoReq{}); err != nil {
		t.Fatal(err)
	}
	if got := b.tenant.Load(); got != "outer" {
		t.Errorf("X-Tenant = %q, want outer (an inner WithCallOptions keeps the outer one's)", got)
	}
}

// A call on a closed client fails at once: not even its body is encoded.
func TestClient_CallAfterCloseDoesNoWork(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst))
	c.Close()
	var n atomic.Int64
	err := c.Invoke(context.Background(), "POST", "/x", countedReq{&n}, nil)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close = %v, want ErrClosed", err)
	}
	if n.Load() != 0 {
		t.Fatalf("the body of a call on a closed client was encoded %d times", n.Load())
	}
}

// An overload answer holds the instance out for half to all of its
// Retry-After, capped at 5 s, and 1 s without one (OverloadHold's doc).
func TestError_OverloadHoldDefaultAndCap(t *testing.T) {
	body := []byte(`{"error":"x","code":"overloaded"}`)
	for _, c := range []struct {
		retryAfter string
		lo, hi     time.Duration
	}{
		{"", 500 * time.Millisecond, time.Second},
		{"30", 2500 * time.Millisecond, 5 * time.Second},
	} {
		h := http.Header{}
		if c.retryAfter != "" {
			h.Set("Retry-After", c.retryAfter)
		}
		e := decodeError(http.StatusServiceUnavailable, h, body, "h:1", "")
		for range 100 {
			if d := e.OverloadHold(); d < c.lo || d > c.hi {
				t.Fatalf("Retry-After %q: hold %v, want within [%v, %v]", c.retryAfter, d, c.lo, c.hi)
			}
		}
	}
}

// A Retry-After, in seconds or as a date, is read as at most an hour.
func TestParseRetryAfter_CappedAtAnHour(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, v := range []string{"7200", now.Add(2 * time.Hour).Format(http.TimeFormat)} {
		if got := parseRetryAfter(v, now); got != time.Hour {
			t.Errorf("parseRetryAfter(%q) = %v, want 1h", v, got)
		}
	}
}

// The documented defaults: 16 MiB answers, and DefaultTransport's 128
// idle connections per instance, no proxy and 20 s unacknowledged
// timeout (docs/client.md).
func TestDefaults_AsDocumented(t *testing.T) {
	cfg, err := newConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.maxBody != 16<<20 {
		t.Errorf("default response limit %d, want 16 MiB", cfg.maxBody)
	}
	tr := DefaultTransport()
	if tr.MaxIdleConnsPerHost != 128 || tr.Proxy != nil {
		t.Errorf("DefaultTransport: %d idle connections per host, proxy set %v; want 128 and none", tr.MaxIdleConnsPerHost, tr.Proxy != nil)
	}
	if DefaultDialTimeout != 2*time.Second {
		t.Errorf("DefaultDialTimeout = %v, want 2s", DefaultDialTimeout)
	}
	if DefaultUnackedTimeout != 20*time.Second {
		t.Errorf("DefaultUnackedTimeout = %v, want 20s", DefaultUnackedTimeout)
	}
}

// No instance in the set (yet) is unprocessed: retried for any call,
// since discovery may fill the set before the next attempt.
func TestClassify_NoEndpointsIsUnprocessed(t *testing.T) {
	for _, err := range []error{balancer.ErrNoEndpoints, fmt.Errorf("client echo: %w", balancer.ErrNoEndpoints)} {
		if got := classify(err); got != retry.Unprocessed {
			t.Errorf("classify(%v) = %v, want Unprocessed", err, got)
		}
	}
}

// A redirect is the service's answer: not followed to an address outside
// discovery.
func TestCall_RedirectIsNotFollowed(t *testing.T) {
	elsewhere := startStatusBackend(t, http.StatusOK)
	redirect := serveWith(t, "", nil, func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.hits.Add(1)
			http.Redirect(w, r, elsewhere.inst.Endpoints[0]+"/x", http.StatusFound)
		})
	})
	c := newClient(t, newRegistry(t, redirect.inst), WithRetry(retry.WithMaxAttempts(1)))
	_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/x", echoReq{})
	var ce *Error
	if !errors.As(err, &ce) || ce.Status != http.StatusFound {
		t.Fatalf("err = %v, want the 302 as a *client.Error", err)
	}
	if h := elsewhere.hits.Load(); h != 0 {
		t.Fatalf("the redirect was followed: its target got %d requests", h)
	}
}

// Under a consistent-hash balancer a key stays on its one instance: no
// hedge to another, however slow the attempt (hedging is off by default
// there).
func TestClient_ConsistentHashDoesNotHedge(t *testing.T) {
	a, b := startBackend(t, "", nil), startBackend(t, "", nil)
	hash, err := balancer.NewConsistentHash()
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, newRegistry(t, a.inst, b.inst), WithBalancer(hash),
		WithRetry(retry.WithPerAttemptTimeout(time.Hour)))
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		defer cancel()
		_, err := Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}, HashKey("k"))
		return err
	}
	// Enough answers for a policy that hedges to know its p99.
	for i := range 60 {
		if err := call(); err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
	waitRefresh()
	slow := a
	if b.hits.Load() > a.hits.Load() {
		slow = b
	}
	slow.delay.Store(int64(time.Second))
	if err := call(); err != nil {
		t.Fatal(err)
	}
	if h := c.State().Hedges; h != 0 {
		t.Fatalf("%d hedges under a consistent-hash balancer, want 0", h)
	}
}
