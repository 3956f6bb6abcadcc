package fallback_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/metrics"
)

type getReq struct{ ID string }
type user struct{ ID, Name string }

// syncBuf is a log destination safe for the client's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A real call that fails (the instance answers 500) and is answered by
// the fallback is counted under its service, method and the failure's
// kind, and a burst of them is one warn line (report j57b F5).
func TestTrace_RealFailedCallsServedByAFallbackAreCountedAndLoggedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "store: read /data/users: input/output error", http.StatusInternalServerError)
	}))
	defer srv.Close()
	c, err := client.NewFromInstancer(sd.FixedInstancer{strings.TrimPrefix(srv.URL, "http://")}, "user", client.WithoutOutlier())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	get := client.NewEndpoint[getReq, user](c, "GET", func(r getReq) string { return "/users/" + r.ID }, client.Method("Get"))

	reg := prometheus.NewRegistry()
	var logs syncBuf
	// An hour between lines: the whole burst falls in one interval
	// however slow the machine.
	tr := fallback.NewTrace("user", fallback.WithLogger(log.NewLogfmtLogger(&logs)),
		fallback.WithObserver(metrics.NewFallbacks(reg)), fallback.WithLogEvery(time.Hour))
	degraded := fallback.Middleware(fallback.Traced(tr, "Get", func(_ context.Context, r getReq, _ error) (user, error) {
		return user{ID: r.ID}, nil
	}))(get)

	const n = 5
	for i := range n {
		got, err := degraded(ctx, getReq{ID: "u-1"})
		if err != nil || got.(user).ID != "u-1" {
			t.Fatalf("call %d: %v, %v; want the fallback's answer", i, got, err)
		}
	}
	want := `
# HELP warren_client_fallbacks_total Calls of each method of a called service that failed and were answered by a fallback instead, by the svcerr kind of the failure replaced.
# TYPE warren_client_fallbacks_total counter
warren_client_fallbacks_total{code="internal",method="Get",service="user"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "warren_client_fallbacks_total"); err != nil {
		t.Error(err)
	}
	out := logs.String()
	if k := strings.Count(out, "serving fallback"); k != 1 {
		t.Fatalf("%d fallback lines for a burst of %d, want 1:\n%s", k, n, out)
	}
	for _, kv := range []string{"level=warn", "service=user", "method=Get", "served=1", "code=internal", "500"} {
		if !strings.Contains(out, kv) {
			t.Errorf("the fallback line lacks %q:\n%s", kv, out)
		}
	}
}
