package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// statusBackend answers every request with status (and the X-Tenant
// header it received, as the body's code) and counts the requests.
type statusBackend struct {
	inst   registry.Instance
	status atomic.Int32
	hold   atomic.Int64 // nanoseconds to wait before answering
	hits   atomic.Int64
	tenant atomic.Value
}

func startStatusBackend(t *testing.T, status int) *statusBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	b := &statusBackend{inst: registry.Instance{ID: registry.DefaultID("echo", "127.0.0.1", port), Name: "echo",
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}}
	b.status.Store(int32(status))
	b.tenant.Store("")
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		b.tenant.Store(r.Header.Get("X-Tenant"))
		if d := time.Duration(b.hold.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		st := int(b.status.Load())
		w.Header().Set("Content-Type", "application/json")
		if st == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(st)
		if st >= 300 {
			w.Write([]byte(`{"error":"refused","code":"c` + strconv.Itoa(st) + `"}`))
			return
		}
		w.Write([]byte(`{"n":1}`))
	})}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(ln) }() // owned by the test: ends at Close in Cleanup
	t.Cleanup(func() { srv.Close(); <-served })
	return b
}

// TestCall_ClientErrorsAreNeverRetried: 400, 401, 403, 404, 409 and 422
// describe the request, so even an idempotent call is sent once; 429 is
// the one 4xx retried (after its Retry-After, tested apart).
func TestCall_ClientErrorsAreNeverRetried(t *testing.T) {
	for _, st := range []int{400, 401, 403, 404, 409, 422} {
		b := startStatusBackend(t, st)
		c := newClient(t, newRegistry(t, b.inst), WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Millisecond, time.Millisecond)))
		_, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/x", echoReq{}, Idempotent())
		var ce *Error
		if !errors.As(err, &ce) || ce.Status != st {
			t.Fatalf("%d: err = %v, want a *client.Error with that status", st, err)
		}
		if h := b.hits.Load(); h != 1 {
			t.Errorf("%d: sent %d times, want once", st, h)
		}
	}
}

// TestCall_NoRetryMakesOneAttemptEvenOnA503: a 503 is always retried,
// unless the call says NoRetry (per call, through the context).
func TestCall_NoRetryMakesOneAttemptEvenOnA503(t *testing.T) {
	b := startStatusBackend(t, http.StatusServiceUnavailable)
	c := newClient(t, newRegistry(t, b.inst), WithoutOutlier(), WithRetry(retry.WithMaxAttempts(3), retry.WithBackoff(time.Millisecond, time.Millisecond)))
	ctx := WithCallOptions(context.Background(), NoRetry())
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}); err == nil {
		t.Fatal("503 answered without an error")
	}
	if h := b.hits.Load(); h != 1 {
		t.Fatalf("NoRetry: sent %d times, want once", h)
	}
	// Without it the same call is retried.
	b.hits.Store(0)
	Call[echoReq, echoResp](context.Background(), c, "GET", "/x", echoReq{})
	if h := b.hits.Load(); h != 3 {
		t.Fatalf("without NoRetry: sent %d times, want 3 (the policy's attempts)", h)
	}
}

// TestCall_TimeoutBoundsTheWholeCall: Timeout cuts a call to a backend
// that holds every request, with the context's deadline error.
func TestCall_TimeoutBoundsTheWholeCall(t *testing.T) {
	b := startStatusBackend(t, http.StatusOK)
	b.hold.Store(int64(time.Minute))
	c := newClient(t, newRegistry(t, b.inst))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Call[echoReq, echoResp](WithCallOptions(ctx, Timeout(200*time.Millisecond)), c, "GET", "/x", echoReq{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the caller's own context ended first; the per-call timeout did not cut the call")
	}
}

// TestCall_IdempotencyOverridesTheMethodsDefault: a GET is retried after a
// 502 (the server may have acted) unless Idempotency(false) says the call
// must not be applied twice; Idempotency(true) does the reverse for POST.
func TestCall_IdempotencyOverridesTheMethodsDefault(t *testing.T) {
	for _, c := range []struct {
		method string
		opts   []CallOption
		hits   int64
	}{
		{"GET", nil, 2},
		{"GET", []CallOption{Idempotency(false)}, 1},
		{"POST", nil, 1},
		{"POST", []CallOption{Idempotency(true)}, 2},
	} {
		b := startStatusBackend(t, http.StatusBadGateway)
		cl := newClient(t, newRegistry(t, b.inst), WithoutOutlier(), WithRetry(retry.WithMaxAttempts(2), retry.WithBackoff(time.Millisecond, time.Millisecond)))
		Call[echoReq, echoResp](WithCallOptions(context.Background(), c.opts...), cl, c.method, "/x", echoReq{})
		if h := b.hits.Load(); h != c.hits {
			t.Errorf("%s with %d options: sent %d times, want %d", c.method, len(c.opts), h, c.hits)
		}
	}
}

// TestCall_HeaderPerCallReachesTheServer: Header through WithCallOptions
// is sent, and an inner WithCallOptions wins over an outer one.
func TestCall_HeaderPerCallReachesTheServer(t *testing.T) {
	b := startStatusBackend(t, http.StatusOK)
	c := newClient(t, newRegistry(t, b.inst))
	ctx := WithCallOptions(context.Background(), Header("X-Tenant", "outer"))
	ctx = WithCallOptions(ctx, Header("X-Tenant", "t-42"))
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}); err != nil {
		t.Fatal(err)
	}
	if got := b.tenant.Load(); got != "t-42" {
		t.Fatalf("X-Tenant = %q, want t-42", got)
	}
}
