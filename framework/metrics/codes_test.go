package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// A peer's error codes are label values of the caller's
// warren_client_method_errors_total: a peer that makes up a code per call
// (the tester's finding 6: 500 codes, 500 series) gets at most
// MaxCodesPerMethod of them plus "other", and the codes a caller alerts on
// still show after the flood.
func TestClient_PeerCodesMakeABoundedSetOfSeries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A real peer: its answer's code is the query's.
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("code")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":"no such thing","code":%q}`, code)
	}))
	defer peer.Close()
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	if err := reg.Register(ctx, registry.Instance{ID: "peer-1", Name: "peer", Endpoints: []string{peer.URL}}); err != nil {
		t.Fatal(err)
	}
	prom := prometheus.NewRegistry()
	c, err := client.New(ctx, srv.Registry(), "peer", client.WithObserver(metrics.NewClient(prom)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := func(code string) {
		t.Helper()
		err := c.Invoke(ctx, "GET", "/thing?code="+code, nil, nil, client.Method("Get"))
		if err == nil || ctx.Err() != nil {
			t.Fatalf("call with code %q: err %v, ctx %v", code, err, ctx.Err())
		}
	}
	call("user_not_found") // a code of the peer's own, before the flood
	for i := range 500 {
		call(fmt.Sprintf("thing_%d_not_found", i))
	}
	for _, code := range []string{"user_not_found", "not_found", "overloaded", "Not%20Found", strings.Repeat("x", 60)} {
		call(code)
	}

	errs := map[string]float64{}
	mfs, err := prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "warren_client_method_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "code" {
					errs[lp.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	// user_not_found and the flood's first share the cap; the well-known
	// not_found and overloaded come on top of it.
	if max := metrics.MaxCodesPerMethod + 1 + 2; len(errs) > max {
		t.Errorf("%d error series, want at most %d: %v", len(errs), max, errs)
	}
	want := map[string]float64{
		"user_not_found":    2,
		"not_found":         1,
		"overloaded":        1,
		"thing_0_not_found": 1,
		// The flood past the cap, a code with a space and one too long.
		metrics.OtherCode: 500 - (metrics.MaxCodesPerMethod - 1) + 2,
	}
	for code, n := range want {
		if errs[code] != n {
			t.Errorf("errors{code=%q} = %v, want %v (all: %v)", code, errs[code], n, errs)
		}
	}
}
