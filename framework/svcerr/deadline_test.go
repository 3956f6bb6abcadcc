package svcerr_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// A call cut off by the caller's own deadline is of kind
// DeadlineExceeded, as the transports answer it when it is returned
// (HTTP 504 deadline_exceeded, gRPC DEADLINE_EXCEEDED) and as the
// client's per-method series count it. KindOf said Internal, so a
// fallback served for it was counted (warren_client_fallbacks_total)
// and logged as code "internal": a bug of the called service, to an
// operator, where it was only slow.
func TestKindOf_ACallersDeadlineIsDeadlineExceeded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := memory.NewServer()
	rt := httptransport.NewRouter()
	release := make(chan struct{})
	rt.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // hung, whatever its own deadline says: until the test ends, 30 s at most
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}))
	startHTTP(t, srv, "slow", rt)
	t.Cleanup(func() { close(release) }) // before the App stops: cleanups run last first
	c, err := client.New(ctx, srv.Registry(), "slow", once...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	err = c.Invoke(dctx, "GET", "/slow", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call past its deadline: %v; want context.DeadlineExceeded", err)
	}
	st, body := httptransport.Classify(err)
	if k := svcerr.KindOf(err); k != svcerr.DeadlineExceeded || httptransport.KindForStatus(st) != k {
		t.Errorf("KindOf = %s; the HTTP answer for it is %d %s; want deadline_exceeded for both", k, st, body.Code)
	}
	prom := prometheus.NewRegistry()
	fb := metrics.NewFallbacks(prom)
	fallback.NewTrace("slow", fallback.WithObserver(fb)).Served("Get", err)
	if n, err := testutil.GatherAndCount(prom, "warren_client_fallbacks_total"); err != nil || n != 1 {
		t.Fatalf("fallbacks series: %d, %v", n, err)
	}
	if err := testutil.GatherAndCompare(prom, stringsReader(`
# HELP warren_client_fallbacks_total Calls of each method of a called service that failed and were answered by a fallback instead, by the svcerr kind of the failure replaced.
# TYPE warren_client_fallbacks_total counter
warren_client_fallbacks_total{code="deadline_exceeded",method="Get",service="slow"} 1
`), "warren_client_fallbacks_total"); err != nil {
		t.Error(err)
	}
	// A deadline inside a business error's chain keeps that error's kind.
	wrapped := svcerr.Wrap(svcerr.Unavailable, "ledger_down", "ledger unavailable", context.DeadlineExceeded)
	if k := svcerr.KindOf(wrapped); k != svcerr.Unavailable {
		t.Errorf("KindOf(Wrap(Unavailable, deadline)) = %s; want unavailable", k)
	}
	if k := svcerr.KindOf(context.Canceled); k != svcerr.Internal {
		t.Errorf("KindOf(context.Canceled) = %s; want internal, as before", k)
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
