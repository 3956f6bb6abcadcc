package user

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/retry"
)

// The generated WithFallbacks passes its options to the fallbacks: each
// degraded answer is counted under the service and method, and logged
// (report j57b F5: order's fallback served 759 answers with no trace).
func TestClient_WithFallbacksCountsAndLogsTheDegradedAnswers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":"server overloaded, try another instance","code":"overloaded"}`)
	}))
	defer srv.Close()
	c := must(client.NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, ServiceName,
		client.WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond))))
	strict := NewClientFromEndpoints(MakeHTTPClientEndpoints(c), c)
	defer strict.Close()
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer // the calls run one at a time, in this goroutine
	degraded := strict.WithFallbacks(Fallbacks{Get: func(_ context.Context, req GetRequest, _ error) (User, error) {
		return User{ID: req.ID}, nil
	}}, fallback.WithLogger(log.NewLogfmtLogger(&logs)), fallback.WithObserver(metrics.NewFallbacks(reg)), fallback.WithLogEvery(time.Hour))
	for range 3 {
		if got, err := degraded.Get(ctx, GetRequest{ID: "u-1"}); err != nil || got != (User{ID: "u-1"}) {
			t.Fatalf("%+v, %v; want the degraded answer", got, err)
		}
	}
	want := `
# HELP warren_client_fallbacks_total Calls of each method of a called service that failed and were answered by a fallback instead, by the svcerr kind of the failure replaced.
# TYPE warren_client_fallbacks_total counter
warren_client_fallbacks_total{code="unavailable",method="Get",service="user"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "warren_client_fallbacks_total"); err != nil {
		t.Error(err)
	}
	if n := strings.Count(logs.String(), "serving fallback"); n != 1 || !strings.Contains(logs.String(), "service=user method=Get served=1") {
		t.Errorf("%d fallback lines, want 1 naming user.Get:\n%s", n, logs.String())
	}
}
