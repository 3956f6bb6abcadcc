package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/idempotency"
)

// Inside a keyed call being served, each keyed call it makes downstream
// gets a key derived from the incoming one, so that a retry of the
// upstream call repeats the same keys. Two different downstream calls to
// the same method and path — a ledger's debit and credit, one charge per
// line item — are two effects, not one: they must not share a key, or a
// downstream service that compares requests (idempotency.Request, as the
// demo services do) refuses the second as a key reuse and one that does
// not answers it with the first's result, the effect never made.
func TestKeyed_TwoCallsToOnePathAreTwoEffectsAndARetryRepeatsThem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := idempotency.NewMemoryStore(time.Minute)
	var mu sync.Mutex
	var applied []int
	b := serveWith(t, "", nil, func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var in echoReq
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			rctx := idempotency.NewContext(r.Context(), r.Header.Get(idempotency.Header))
			out, err := idempotency.Do(rctx, store, "ledger.Post", func(context.Context) (echoResp, error) {
				mu.Lock()
				applied = append(applied, in.N)
				mu.Unlock()
				return echoResp{N: in.N}, nil
			}, idempotency.Request(in))
			w.Header().Set("Content-Type", "application/json")
			if err != nil {
				w.WriteHeader(http.StatusPreconditionFailed)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error(), "code": idempotency.CodeKeyReused})
				return
			}
			_ = json.NewEncoder(w).Encode(out)
		})
	})
	c := newClient(t, newRegistry(t, b.inst))

	// The upstream call being served, with its own key; then the same
	// call retried (served again under its key): the same two calls are
	// the same two effects, not new ones.
	upstream := idempotency.NewKey()
	for run := 1; run <= 2; run++ {
		served := idempotency.NewServedContext(ctx, upstream)
		for _, n := range []int{-100, 100} { // a debit and a credit
			got, err := Call[echoReq, echoResp](served, c, "POST", "/entries", echoReq{N: n}, Keyed())
			if err != nil {
				t.Fatalf("run %d, entry %d: %v", run, n, err)
			}
			if got.N != n {
				t.Fatalf("run %d, entry %d answered with entry %d's result", run, n, got.N)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(applied) != "[-100 100]" {
		t.Fatalf("applied %v, want the debit and the credit once each", applied)
	}
}
