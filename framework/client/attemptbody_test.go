package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
)

// Every attempt of a call carries the whole body, the first (whose body
// state the call holds, request.sent0) and the retries after it (each with
// its own), whichever instance they land on.
func TestClient_EveryAttemptSendsTheWholeBody(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	n := 0
	handler := func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			mu.Lock()
			bodies = append(bodies, string(body))
			n++
			refuse := n%2 == 1 // every call's first attempt
			mu.Unlock()
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if refuse { // a load shedder's answer: retried for a POST too
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"error":"server overloaded, try another instance","code":"overloaded"}`))
				return
			}
			var in echoReq
			if err := json.Unmarshal(body, &in); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(echoResp{N: in.N, From: b.inst.ID})
		})
	}
	b1, b2 := serveWith(t, "", nil, handler), serveWith(t, "", nil, handler)
	c := newClient(t, newRegistry(t, b1.inst, b2.inst), WithBalancer(balancer.NewRoundRobin()), WithoutOutlier())

	const calls = 6
	for i := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		got, err := Call[echoReq, echoResp](ctx, c, "POST", "/echo", echoReq{N: 1000 + i})
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if got.N != 1000+i {
			t.Fatalf("call %d answered for %d", i, got.N)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 2*calls {
		t.Fatalf("instances saw %d attempts, want %d (one refused, one answered per call): %q", len(bodies), 2*calls, bodies)
	}
	for i, body := range bodies {
		want, _ := json.Marshal(echoReq{N: 1000 + i/2})
		if body != string(want) {
			t.Errorf("attempt %d sent %q, want %q", i, body, want)
		}
	}
}
