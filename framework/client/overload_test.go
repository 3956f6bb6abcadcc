package client

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

func TestClient_OverloadAnswerIsRetriedElsewhereAndNotCountedAsFailure(t *testing.T) {
	shedding, healthy := startBackend(t, "", nil), startBackend(t, "", nil)
	shedding.mode.Store(modeOverloaded)
	// Ejection after 2 failures: were overload answers failures, the
	// shedding instance would be ejected within a few calls.
	c := newClient(t, newRegistry(t, shedding.inst, healthy.inst), WithOutlier(outlier.WithConsecutiveFailures(2)))
	const workers, calls = 4, 300
	start := time.Now()
	errs, _ := load(workers, calls, 60*time.Second, func(i int) error {
		if i%3 == 0 {
			// Not idempotent: retried only because an overload answer
			// says the request was not acted on.
			_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/echo", echoReq{N: i})
			return err
		}
		return get(c)(i)
	})
	elapsed := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d of %d calls failed with one of two instances shedding; first: %v", len(errs), calls, errs[0])
	}
	if ej, _ := c.detector.Ejected(); ej != 0 {
		t.Fatalf("%d instances ejected: an overload answer counted against the instance", ej)
	}
	for _, tg := range c.Targets() {
		if b := tg.Breaker(); b != nil && b.State().String() != "closed" {
			t.Fatalf("breaker of %s is %s", tg.Instance().ID, b.State())
		}
	}
	// Each overload answer holds the instance for at least 0.5s, during
	// which only calls already picked can reach it.
	limit := int64(workers) * (int64(elapsed/(500*time.Millisecond)) + 1)
	t.Logf("%d calls in %v: shedding instance hit %d times (bound %d), healthy %d", calls, elapsed, shedding.hits.Load(), limit, healthy.hits.Load())
	if h := shedding.hits.Load(); h > limit {
		t.Fatalf("shedding instance hit %d times in %v, want ≤ %d: the balancer does not back off from it", h, elapsed, limit)
	}
}

func TestClient_EveryInstanceOverloadedFailsWithinBudgetAndLowersTheLimit(t *testing.T) {
	var insts []registry.Instance
	var bs []*backend
	for range 2 {
		b := startBackend(t, "", nil)
		b.mode.Store(modeOverloaded)
		bs = append(bs, b)
		insts = append(insts, b.inst)
	}
	const calls, ratio, burst = 200, 0.2, 5
	c := newClient(t, newRegistry(t, insts...),
		WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(retry.NewBudget(ratio, burst))),
		WithConcurrencyLimit(climit.WithLimits(100, 2, 100), climit.WithBackoff(0.5, 0)))
	errs, _ := load(4, calls, 60*time.Second, get(c))
	var attempts int64
	for _, b := range bs {
		attempts += b.hits.Load()
	}
	limited := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, climit.ErrLimited):
			limited++
		case !errors.Is(err, svcerr.ErrOverloaded):
			t.Fatalf("error %v: want the overload answer or the client's limit", err)
		}
	}
	t.Logf("%d calls: %d errors (%d refused by the client's limit), %d attempts reached the service", calls, len(errs), limited, attempts)
	if len(errs) != calls {
		t.Fatalf("%d errors, want every call to fail", len(errs))
	}
	// No retry storm: at most one attempt per call that was let through,
	// plus what the budget allows.
	if max := int64(calls) + int64(calls*ratio) + burst; attempts > max {
		t.Fatalf("%d attempts for %d calls, want ≤ %d", attempts, calls, max)
	}
	if st := c.State(); st.Limit >= 100 {
		t.Fatalf("client limit %d after every call was refused as overloaded, want it cut below 100", st.Limit)
	}
}

func TestError_OverloadAndRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "2": 2 * time.Second, "-1": 0, "soon": 0,
		now.Add(3 * time.Second).Format(http.TimeFormat): 3 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):    0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
	shed := decodeError(503, http.Header{"Retry-After": {"1"}}, []byte(`{"error":"x","code":"overloaded"}`), "h:1", "")
	if !shed.Overloaded() || !errors.Is(shed, svcerr.ErrOverloaded) || shed.RetryDelay() != 0 {
		t.Fatalf("503 overloaded: Overloaded %v, Is ErrOverloaded %v, RetryDelay %v", shed.Overloaded(), errors.Is(shed, svcerr.ErrOverloaded), shed.RetryDelay())
	}
	for range 100 {
		if h := shed.OverloadHold(); h < 500*time.Millisecond || h > time.Second {
			t.Fatalf("hold %v, want within [0.5s, 1s]", h)
		}
	}
	if instanceFailure(shed) {
		t.Fatal("an overload answer counts against the instance")
	}
	draining := decodeError(503, http.Header{}, []byte(`{"error":"draining","code":"unavailable"}`), "h:1", "")
	if draining.Overloaded() || draining.OverloadHold() != 0 || !instanceFailure(draining) {
		t.Fatal("a plain 503 is taken for an overload answer")
	}
	limited := decodeError(429, http.Header{"Retry-After": {"2"}}, []byte(`{"error":"slow down","code":"rate_limited"}`), "h:1", "")
	if limited.RetryClass() != retry.Unprocessed || limited.RetryDelay() != 2*time.Second || svcerr.KindOf(limited) != svcerr.ResourceExhausted {
		t.Fatalf("429: class %v, delay %v, kind %v", limited.RetryClass(), limited.RetryDelay(), svcerr.KindOf(limited))
	}
	// balancer.Refused: no latency sample from a 429 (P2C would favour the
	// instance that refuses fastest), unless it was passed on after work.
	passed := decodeError(429, http.Header{}, []byte(`{"error":"slow down","code":"rate_limited","passed_on":true}`), "h:1", "")
	if !limited.Refused() || passed.Refused() || shed.Refused() || draining.Refused() {
		t.Fatalf("Refused: 429 %v, passed-on 429 %v, overloaded %v, 503 %v; want only the 429", limited.Refused(), passed.Refused(), shed.Refused(), draining.Refused())
	}
}

func TestCall_TooManyRequestsIsRetriedAfterRetryAfter(t *testing.T) {
	b := startBackend(t, "", nil)
	b.mode.Store(modeTooMany)
	c := newClient(t, newRegistry(t, b.inst), WithRetry(retry.WithMaxAttempts(2)))
	start := time.Now()
	_, err := Call[echoReq, echoResp](context.Background(), c, "POST", "/echo", echoReq{N: 1})
	if err != nil {
		t.Fatalf("call after one 429: %v", err)
	}
	if el := time.Since(start); el < time.Second || b.hits.Load() != 2 {
		t.Fatalf("%d attempts in %v, want 2 with the Retry-After second between them", b.hits.Load(), el)
	}
}

// countedReq counts how often it is encoded.
type countedReq struct{ n *atomic.Int64 }

func (r countedReq) MarshalJSON() ([]byte, error) { r.n.Add(1); return []byte(`{"n":1}`), nil }

// A call the client's own limit refuses is refused before anything is
// done for it: its body is not encoded.
func TestClient_CallRefusedByTheLimitEncodesNothing(t *testing.T) {
	b := startBackend(t, "", nil)
	c := newClient(t, newRegistry(t, b.inst), WithConcurrencyLimit(climit.WithLimits(1, 1, 1)))
	var encoded atomic.Int64
	tok, ok := c.limiter.Acquire() // the one call the limit allows
	if !ok {
		t.Fatal("limit of 1 refused the first call")
	}
	err := c.Invoke(context.Background(), "POST", "/echo", countedReq{&encoded}, nil)
	if !errors.Is(err, climit.ErrLimited) {
		t.Fatalf("call over the limit: err = %v, want ErrLimited", err)
	}
	if n := encoded.Load(); n != 0 {
		t.Fatalf("refused call encoded its body %d times, want 0", n)
	}
	tok.Release(climit.Ignored)
	if err := c.Invoke(context.Background(), "POST", "/echo", countedReq{&encoded}, nil); err != nil {
		t.Fatalf("call under the limit: %v", err)
	}
	if n := encoded.Load(); n != 1 {
		t.Fatalf("admitted call encoded its body %d times, want 1", n)
	}
}
