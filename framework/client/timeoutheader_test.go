package client

import (
	"context"
	"net/http"
	"strconv"
	"sync"
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
