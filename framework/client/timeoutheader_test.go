package client

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/retry"
)

// Each call sends the time its attempt has left in TimeoutHeader, however
// the calls before it were bounded: the value one call sent is reused by
// the next only when it says the same (instanceShared.timeoutHeader).
func TestClient_TimeoutHeaderSaysEachCallsDeadline(t *testing.T) {
	var mu sync.Mutex
	var got []string
	b := serveWith(t, "", nil, func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, r.Header.Get(httptransport.TimeoutHeader))
			mu.Unlock()
			b.serve(w, r)
		})
	})
	reg := newRegistry(t, b.inst)
	c := newClient(t, reg, WithRetry(retry.WithPerAttemptTimeout(20*time.Second)))

	// Each step: the caller's deadline (0: none) and the bounds of the
	// milliseconds the header may say, wide enough for a loaded machine.
	steps := []struct {
		deadline time.Duration
		min, max int64
	}{
		{0, 10_000, 20_000}, // the attempt's own 20 s
		{0, 10_000, 20_000},
		{3 * time.Second, 1, 3_000}, // the caller's, sooner
		{3 * time.Second, 1, 3_000},
		{0, 10_000, 20_000},
		{60 * time.Second, 10_000, 20_000}, // the caller's, later: the attempt's
		{time.Second, 1, 1_000},
	}
	for i, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if s.deadline > 0 {
			ctx, cancel = context.WithTimeout(context.Background(), s.deadline)
		}
		_, err := Call[echoReq, echoResp](ctx, c, "POST", "/echo", echoReq{N: i})
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(steps) {
		t.Fatalf("server saw %d calls, want %d: %q", len(got), len(steps), got)
	}
	for i, s := range steps {
		ms, err := strconv.ParseInt(got[i], 10, 64)
		if err != nil || ms < s.min || ms > s.max {
			t.Errorf("call %d (deadline %s): %s = %q, want %d to %d ms; all: %q",
				i, s.deadline, httptransport.TimeoutHeader, got[i], s.min, s.max, got)
		}
	}
}

// A RoundTripper wrapper that edits its request's X-Request-Timeout value
// in place (http.RoundTripper's contract forbids it; it happens) changes
// that request alone: the value another call sends, concurrently or
// later, is its own (review s60 F1: the text cached for reuse was handed
// out in one shared slice, so 193 of 200 calls arrived carrying another
// call's edit, and -race reported the write against net/http's read).
func TestClient_ATimeoutHeaderEditedInPlaceStaysWithItsRequest(t *testing.T) {
	s := &instanceShared{}
	a := s.timeoutHeader(5 * time.Second)
	a[0] = "1"
	if b := s.timeoutHeader(5 * time.Second); b[0] != "5000" {
		t.Fatalf("a later request with 5 s left sends %s %q: another request's edit", httptransport.TimeoutHeader, b[0])
	}

	b := startBackend(t, "", nil)
	var polluted atomic.Int64
	c := newClient(t, newRegistry(t, b.inst), WithRoundTripper(func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			if v := r.Header[httptransport.TimeoutHeader]; len(v) == 1 {
				if v[0] == "1000" {
					polluted.Add(1) // 30 s left, yet it says 1 s: another call's edit
				}
				v[0] = "1000" // forward at most 1 s, in place
			}
			return next.RoundTrip(r)
		})
	}))
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for i := range 100 {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, _ = Call[echoReq, echoResp](ctx, c, "POST", "/echo", echoReq{N: i})
				cancel()
			}
		})
	}
	wg.Wait()
	if n := polluted.Load(); n > 0 {
		t.Fatalf("%d of 200 calls arrived carrying another call's edited %s", n, httptransport.TimeoutHeader)
	}
}
