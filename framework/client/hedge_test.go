package client

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// holder is a real HTTP server that answers like a backend until hold is
// set, then keeps every request until the client gives it up, counting
// the requests it held and released and the idempotency keys it saw.
type holder struct {
	*backend
	hold     atomic.Bool
	held     atomic.Int64
	released atomic.Int64
	mu       sync.Mutex
	keys     []string
}

func (h *holder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.hold.Load() {
		h.serve(w, r)
		return
	}
	h.held.Add(1)
	if k := r.Header.Get(idempotency.Header); k != "" {
		h.mu.Lock()
		h.keys = append(h.keys, k)
		h.mu.Unlock()
	}
	// Read the body first, as a Warren handler does: net/http notices a
	// client gone only once the body is read.
	_, _ = io.Copy(io.Discard, r.Body)
	<-r.Context().Done() // the client cancelled its attempt
	h.released.Add(1)
}

// keyLog is a backend that records the idempotency keys it answered.
type keyLog struct {
	*backend
	mu   sync.Mutex
	keys map[string]bool
}

func (l *keyLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if k := r.Header.Get(idempotency.Header); k != "" {
		l.mu.Lock()
		l.keys[k] = true
		l.mu.Unlock()
	}
	l.serve(w, r)
}

func (l *keyLog) has(k string) bool { l.mu.Lock(); defer l.mu.Unlock(); return l.keys[k] }

// With client defaults but for an attempt deadline of an hour, only a
// hedge can answer a call whose attempt meets the instance that holds
// every request: each GET and keyed POST succeeds through the other
// instance, the held attempts are cancelled (not left to their deadline),
// the keyed hedge carries the held attempt's key, and outpaced attempts
// in a row (five, WithConsecutiveFailures) eject the holder. With hedging off the first call
// that meets the holder fails at its 10 s call deadline.
func TestClient_HedgesAroundAHungInstance(t *testing.T) {
	var h *holder
	serveWith(t, "", nil, func(b *backend) http.Handler { h = &holder{backend: b}; return h })
	var seen *keyLog
	serveWith(t, "", nil, func(b *backend) http.Handler { seen = &keyLog{backend: b, keys: map[string]bool{}}; return seen })
	c := newClient(t, newRegistry(t, h.inst, seen.inst), WithBalancer(balancer.NewRoundRobin()),
		WithRetry(retry.WithPerAttemptTimeout(time.Hour)))

	// Enough answers for the policy to know its p99 (no hedge before).
	if errs, _ := load(1, 60, time.Minute, get(c)); len(errs) > 0 {
		t.Fatalf("warm-up: %d errors, first %v", len(errs), errs[0])
	}
	waitRefresh()
	h.hold.Store(true)
	for i := range 10 {
		if err := get(c)(i); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		_, err := Call[echoReq, echoResp](ctx, c, "POST", "/echo", echoReq{N: i}, Keyed())
		cancel()
		if err != nil {
			t.Fatalf("keyed POST %d: %v", i, err)
		}
	}
	held, st := h.held.Load(), c.State()
	if held < 2 {
		t.Fatalf("the holder got %d requests; round robin should have sent it some", held)
	}
	// Every held attempt is cancelled once its hedge answered; the holder
	// sees each cancellation (bounded wait: it is a loaded machine).
	for end := time.Now().Add(20 * time.Second); h.released.Load() < held && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("held %d, released %d, hedges %d, ejected %d", held, h.released.Load(), st.Hedges, st.Ejected)
	if h.released.Load() < held {
		t.Errorf("%d of %d held attempts were never cancelled", held-h.released.Load(), held)
	}
	if st.Hedges < held { // every held attempt was hedged (warm-up may have hedged too)
		t.Errorf("%d hedges for %d held attempts", st.Hedges, held)
	}
	if st.Ejected != 1 {
		t.Errorf("ejected %d, want the holder ejected after five outpaced attempts", st.Ejected)
	}
	h.mu.Lock()
	keys := append([]string(nil), h.keys...)
	h.mu.Unlock()
	for _, k := range keys {
		if !seen.has(k) {
			t.Errorf("the held keyed attempt's key %s never reached the other instance", k)
		}
	}
}

// A hedge goes through the instance endpoint like any attempt: over a
// non-HTTP instance factory (Client.Do) the call returns the winner's
// response, not the cancelled loser's.
func TestDo_HedgedCallReturnsTheWinnersResponse(t *testing.T) {
	slow := registry.Instance{ID: registry.DefaultID("echo", "127.0.0.1", 1), Name: "echo", Endpoints: []string{registry.EndpointURL("grpc", "127.0.0.1", 1)}}
	fast := registry.Instance{ID: registry.DefaultID("echo", "127.0.0.1", 2), Name: "echo", Endpoints: []string{registry.EndpointURL("grpc", "127.0.0.1", 2)}}
	var hold atomic.Bool
	f := func(inst registry.Instance) (endpoint.Endpoint, io.Closer, error) {
		return func(ctx context.Context, _ any) (any, error) {
			if inst.ID == slow.ID && hold.Load() {
				<-ctx.Done() // until its hedge wins
				return nil, ctx.Err()
			}
			return inst.ID, nil
		}, nil, nil
	}
	c, err := NewFromInstancer(sd.FixedInstancer{slow.String(), fast.String()}, "echo", WithInstanceFactory(f),
		WithBalancer(balancer.NewRoundRobin()), WithRetry(retry.WithPerAttemptTimeout(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	do := func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
		defer cancel()
		return c.Do(ctx, "req", true)
	}
	for i := range 60 { // learn the p99
		if _, err := do(); err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
	waitRefresh()
	hold.Store(true)
	for i := range 4 {
		if resp, err := do(); err != nil || resp != fast.ID {
			t.Fatalf("call %d: %v, %v; want %s's answer", i, resp, err, fast.ID)
		}
	}
	if c.State().Hedges < 1 {
		t.Fatal("no hedge sent")
	}
}

// waitRefresh outwaits the policy's 50 ms between recomputations of its
// p99, so the next call reads one learnt from the warm-up (a wait for a
// known period, not a bound on anything's speed).
func waitRefresh() { time.Sleep(100 * time.Millisecond) }
