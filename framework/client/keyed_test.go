package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/transport/httpserver"
)

// keyedServer is a Warren HTTP handler whose POST /orders applies its
// effect through idempotency.Do and, on the first request only, cuts the
// connection after the effect instead of answering: the reset a caller
// sees when an instance dies between acting and answering.
type keyedServer struct {
	effects atomic.Int64
	mu      sync.Mutex
	keys    []string
	cut     atomic.Bool
	store   *idempotency.MemoryStore
}

func startKeyed(t *testing.T) (*keyedServer, registry.Instance) {
	t.Helper()
	k := &keyedServer{store: idempotency.NewMemoryStore(time.Minute)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		key, _ := idempotency.FromContext(r.Context())
		k.mu.Lock()
		k.keys = append(k.keys, key)
		k.mu.Unlock()
		out, err := idempotency.Do(r.Context(), k.store, "CreateOrder", func(context.Context) (echoResp, error) {
			return echoResp{N: int(k.effects.Add(1))}, nil
		})
		if err != nil {
			httptransport.WriteError(w, err)
			return
		}
		if k.cut.CompareAndSwap(false, true) {
			panic(http.ErrAbortHandler) // acted, then the connection drops
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	return k, serveOrders(t, mux)
}

// serveOrders serves mux behind Warren's HTTP handler and returns it as an
// "orders" instance.
func serveOrders(t *testing.T, mux http.Handler) registry.Instance {
	t.Helper()
	srv := httptest.NewServer(httptransport.Handler(mux, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	return registry.Instance{ID: registry.DefaultID("orders", "127.0.0.1", port), Name: "orders", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

// A keyed POST whose first attempt acted but lost its answer is retried
// with the same key, and the service, deduplicating by it, acts once.
// Without Keyed the same failure is not retried (the POST may have acted).
func TestKeyed_SameKeyOnEveryAttempt_EffectAppliedOnce(t *testing.T) {
	k, inst := startKeyed(t)
	c := must(NewFromInstancer(sd.FixedInstancer{inst.String()}, "orders", WithoutOutlier()))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	got, err := Call[echoReq, echoResp](ctx, c, "POST", "/orders", echoReq{N: 1}, Keyed())
	if err != nil {
		t.Fatalf("keyed POST: %v", err)
	}
	k.mu.Lock()
	keys := append([]string(nil), k.keys...)
	k.mu.Unlock()
	if len(keys) != 2 || keys[0] == "" || keys[0] != keys[1] {
		t.Fatalf("keys per attempt %q; want two attempts with one key", keys)
	}
	if n := k.effects.Load(); n != 1 || got.N != 1 {
		t.Fatalf("effect applied %d times (answer %d); want once, answered from the saved result", n, got.N)
	}

	// A second logical call gets a key of its own.
	k.cut.Store(true) // no more cuts
	if _, err := Call[echoReq, echoResp](ctx, c, "POST", "/orders", echoReq{N: 2}, Keyed()); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	if k.keys[2] == k.keys[0] {
		t.Errorf("second call reused the first call's key %q", k.keys[0])
	}
	k.mu.Unlock()

	// Unkeyed: the reset after the effect is not retried.
	k.cut.Store(false)
	if _, err := Call[echoReq, echoResp](ctx, c, "POST", "/orders", echoReq{N: 3}); err == nil {
		t.Fatal("an unkeyed POST whose connection was cut after the effect was retried")
	}
}

// A call served under a key passes keys derived from it downstream, the
// n-th call to one method and path its n-th key, so a retried upstream
// call (a new served context with the same key) repeats the same keys.
// With a key of the caller's own, every call to one method and path gets
// the same key: trying one again gets the first try's result.
func TestDerive_FromIncomingKey(t *testing.T) {
	run := func() []string {
		in := idempotency.NewServedContext(context.Background(), "upstream-1")
		return []string{
			idempotency.Derive(in, "POST /users"), idempotency.Derive(in, "POST /users"), idempotency.Derive(in, "POST /orders"),
		}
	}
	a, b := run(), run()
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("a retried upstream call derived %v, the first %v; want the same keys", b, a)
	}
	for _, k := range a {
		if k == "upstream-1" || !idempotency.Valid(k) {
			t.Fatalf("derived key %q: want a valid key, not the upstream's", k)
		}
	}
	if a[0] == a[1] || a[0] == a[2] || a[1] == a[2] {
		t.Fatalf("derived keys %v: want the second call to a path and another path to get keys of their own", a)
	}
	mine := idempotency.NewContext(context.Background(), "upstream-1")
	if k1, k2 := idempotency.Derive(mine, "POST /users"), idempotency.Derive(mine, "POST /users"); k1 != k2 || k1 != a[0] {
		t.Fatalf("a key of the caller's own derived %q then %q; want %q both times", k1, k2, a[0])
	}
	if idempotency.Derive(context.Background(), "POST /users") == idempotency.Derive(context.Background(), "POST /users") {
		t.Fatal("calls without an incoming key share a key")
	}
}

// An attempt that failed before the transport read any of the request's
// body never reached a handler: it is retried for a POST that is neither
// idempotent nor keyed.
func TestUnsentPOST_RetriedForEveryMethod(t *testing.T) {
	b := startBackend(t, "", nil)
	var failed atomic.Bool
	c := must(NewFromInstancer(sd.FixedInstancer{b.inst.String()}, "echo", WithoutOutlier(),
		WithRoundTripper(func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if failed.CompareAndSwap(false, true) {
					return nil, errors.New("connection reset before the request was written")
				}
				return next.RoundTrip(r)
			})
		})))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := Call[echoReq, echoResp](ctx, c, "POST", "/", echoReq{N: 1}); err != nil {
		t.Fatalf("POST after an unsent attempt: %v", err)
	}
	if b.hits.Load() != 1 {
		t.Fatalf("backend served %d requests, want 1", b.hits.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The client drops an idle connection before a Warren server would, so it
// never sends on one the server is closing (the keep-alive race).
func TestDefaultTransport_IdleTimeoutShorterThanServers(t *testing.T) {
	if got := DefaultTransport().IdleConnTimeout; got <= 0 || got >= httpserver.DefaultIdleTimeout {
		t.Fatalf("client idle timeout %s, server's %s: want 0 < client < server", got, httpserver.DefaultIdleTimeout)
	}
}

// With no per-attempt timeout configured, a hung instance's attempts of
// idempotent calls are cut off by the adaptive deadline and retried
// elsewhere, and the instance is ejected after consecutive timeouts.
func TestClient_HungBackendCutOffByAdaptiveDeadlineByDefault(t *testing.T) {
	h := startHung(t)
	a, b := startBackend(t, "", nil), startBackend(t, "", nil)
	// Without hedging, which would answer for most hung attempts first
	// (hedge_test.go): this test is the deadline's.
	c := newClient(t, newRegistry(t, h.inst, a.inst, b.inst), WithBalancer(balancer.NewRoundRobin()), WithRetry(retry.WithoutHedging()))
	// The call's own deadline (20 s) is far above the adaptive cap: every
	// call succeeding means the hung attempts were abandoned early.
	errs, lat := load(4, 600, 20*time.Second, func(int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{})
		return err
	})
	if len(errs) > 0 {
		t.Fatalf("%d errors of %d, first: %v", len(errs), len(lat), errs[0])
	}
	h.mu.Lock()
	hungAttempts := len(h.conn)
	h.mu.Unlock()
	t.Logf("%d calls, p99 %s, attempt deadline now %s, ejected %d, attempts on the hung instance %d",
		len(lat), p99(lat), c.policy.AttemptTimeout(), c.State().Ejected, hungAttempts)
	if len(lat) < 50 {
		t.Fatalf("only %d calls in 20s", len(lat))
	}
	if c.State().Ejected < 1 || hungAttempts > 30 {
		t.Fatalf("ejected %d, %d attempts reached the hung instance; want it ejected after a few", c.State().Ejected, hungAttempts)
	}
}

// An instance's transport is made on its first call, not when discovery
// delivers it: a client of many instances that calls few holds few.
func TestClient_TransportMadeOnFirstCall(t *testing.T) {
	b := startBackend(t, "", nil)
	insts := []registry.Instance{b.inst}
	for i := range 50 {
		insts = append(insts, registry.Instance{ID: fmt.Sprintf("idle-%d", i), Name: "echo", Endpoints: []string{registry.EndpointURL("http", "127.0.0.2", 9000+i)}})
	}
	var made atomic.Int64
	c := newClient(t, newRegistry(t, insts...), WithBalancer(balancer.NewRoundRobin()),
		WithTransport(func() *http.Transport { made.Add(1); return DefaultTransport() }))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.ep.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Targets()); n != 51 || made.Load() != 0 {
		t.Fatalf("%d targets, %d transports before any call; want 51 and 0", n, made.Load())
	}
	_, _ = Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{})
	if n := made.Load(); n < 1 || n > 3 {
		t.Fatalf("%d transports after one call of at most 3 attempts", n)
	}
}

// "Another attempt holds this key" is retried after a claim's TTL and is
// not held against the instance that said it.
func TestInProgressAnswer_RetriedAfterClaimTTL_NotAnInstanceFailure(t *testing.T) {
	e := &Error{Status: http.StatusServiceUnavailable, Code: idempotency.CodeInProgress}
	if d := e.RetryDelay(); d != idempotency.DefaultClaimTTL {
		t.Fatalf("retry delay %s, want the claim TTL %s", d, idempotency.DefaultClaimTTL)
	}
	if instanceFailure(e) {
		t.Fatal("an in-progress answer counted against the instance")
	}
	if !instanceFailure(&Error{Status: http.StatusServiceUnavailable, Code: "unavailable"}) {
		t.Fatal("a plain 503 no longer counts against the instance")
	}
}

// A keyed call whose last attempt meets its own earlier attempt still
// running (the first timed out on a stalled machine, say) gets that
// attempt's outcome: the in-progress answer is asked again after a claim's
// TTL without spending an attempt, and the effect is applied once.
func TestKeyed_LastAttemptInProgress_WaitsForTheEarlierAttemptsOutcome(t *testing.T) {
	store := idempotency.NewMemoryStore(time.Minute)
	var effects, inProgress atomic.Int64
	release := make(chan struct{}) // closed once an attempt was told "in progress"
	var once sync.Once
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		out, err := idempotency.Do(r.Context(), store, "CreateOrder", func(context.Context) (echoResp, error) {
			select { // the effect outlasts its attempt until the next attempt met it
			case <-release:
			case <-time.After(10 * time.Second):
			}
			return echoResp{N: int(effects.Add(1))}, nil
		})
		if err != nil {
			httptransport.WriteError(w, err)
			if errors.Is(err, idempotency.ErrInProgress) {
				inProgress.Add(1)
				once.Do(func() { close(release) })
			}
			return
		}
		_ = json.NewEncoder(w).Encode(out)
	})
	inst := serveOrders(t, mux)
	// Two attempts: the first times out holding the key, the second (the
	// last) is told so. The attempt's deadline is below the claim's TTL, so
	// the second attempt meets the claim instead of taking it over.
	c := must(NewFromInstancer(sd.FixedInstancer{inst.String()}, "orders", WithoutOutlier(),
		WithRetry(retry.WithMaxAttempts(2), retry.WithPerAttemptTimeout(time.Second), retry.WithoutHedging())))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := Call[echoReq, echoResp](ctx, c, "POST", "/orders", echoReq{N: 1}, Keyed())
	if err != nil {
		t.Fatalf("keyed POST: %v", err)
	}
	if n := effects.Load(); n != 1 || got.N != 1 {
		t.Fatalf("effect applied %d times (answer %d); want once, answered from the first attempt's result", n, got.N)
	}
	if n := inProgress.Load(); n != 1 {
		t.Fatalf("%d in-progress answers; want 1 (the scenario)", n)
	}
}
