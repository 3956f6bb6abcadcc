package client

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A client's adaptive per-attempt deadline and hedge delay are learnt
// from the attempts of one API method, not of every method together: a
// method that is slow by design (a report, 600 ms) called now and then
// beside a fast one called all the time must not have its attempts cut
// off, hedged and sent again at the fast method's p99 — each of its calls
// then did its work three times and struck healthy instances with
// timeouts (two in a row eject).
func TestClient_SlowMethodIsNotCutOffByAFastMethodsDeadline(t *testing.T) {
	const slow = 600 * time.Millisecond
	var slowHits atomic.Int64
	handler := func(b *backend) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/report") {
				slowHits.Add(1)
				select {
				case <-time.After(slow):
				case <-r.Context().Done():
					return
				}
			}
			b.serve(w, r)
		})
	}
	a := serveWith(t, "", nil, handler)
	b := serveWith(t, "", nil, handler)
	c := newClient(t, newRegistry(t, a.inst, b.inst))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The fast method teaches the policy a p99 of a few ms.
	for i := range 300 {
		if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/echo", echoReq{}, Method("Get")); err != nil {
			t.Fatalf("fast call %d: %v", i, err)
		}
	}
	const reports = 3
	for i := range reports {
		start := time.Now()
		if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/report", echoReq{}, Method("Report")); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		t.Logf("report %d took %s", i, time.Since(start))
	}
	st := c.State()
	t.Logf("report attempts %d for %d calls; retries %d, hedges %d, ejected %d", slowHits.Load(), reports, st.Retries, st.Hedges, st.Ejected)
	// Generous: one extra attempt in all is allowed (a stall of the
	// loaded machine may hedge one).
	if n := slowHits.Load(); n > reports+1 {
		t.Errorf("the server ran the slow method %d times for %d calls: its attempts were cut off by the fast method's deadline", n, reports)
	}
	if st.Ejected != 0 {
		t.Errorf("%d healthy instance(s) ejected by the slow method's cut-off attempts", st.Ejected)
	}
}
