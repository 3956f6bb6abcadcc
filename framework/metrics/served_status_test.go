package metrics

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// serve runs h in a real App (memory registry, loopback, free port) with
// extra app options and returns its base URL; the App stops when the
// test ends.
func serve(t *testing.T, name string, h http.Handler, opts ...app.Option) string {
	t.Helper()
	reg := memory.New()
	a, err := app.New(name, h, reg, append([]app.Option{app.WithListen("127.0.0.1:0"), app.WithID(name + "-1"),
		app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }() // ends when cancel runs at cleanup
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("App did not stop within 30s")
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("Run returned before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("App not ready within 30s")
	}
	return a.Instance().Endpoints[0]
}

// status sends one request and returns the answer's status.
func status(t *testing.T, method, url string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// What the caller got is what warren_http_server_requests_total counts:
// a 103 Early Hints before the answer is no status of the response (the
// access log and Recover skip it since 435b7dc), and a handler that
// panics is answered 500 by the server's Recover, which wraps the
// metrics middleware from outside, so the middleware must count the
// panic as 500 itself (its gRPC twin counts INTERNAL).
func TestServer_HTTPCountsTheStatusTheCallerGot(t *testing.T) {
	s := NewServer(prometheus.NewRegistry())
	rt := httptransport.NewRouter()
	rt.Handle("GET /hints", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.WriteHeader(http.StatusCreated)
	}))
	rt.Handle("GET /boom", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug") }))
	base := serve(t, "statussvc", rt, app.WithHTTPMiddleware(s.Middleware))

	if got := status(t, "GET", base+"/hints"); got != http.StatusCreated {
		t.Fatalf("GET /hints answered %d; want 201", got)
	}
	if got := status(t, "GET", base+"/boom"); got != http.StatusInternalServerError {
		t.Fatalf("GET /boom answered %d; want 500", got)
	}
	got := labelSets(t, s.requests) // before WithLabelValues below makes series
	if v := testutil.ToFloat64(s.requests.WithLabelValues("GET", "/hints", "201")); v != 1 {
		t.Errorf("GET /hints counted %v times under 201; want 1 (series: %v)", v, got)
	}
	if v := testutil.ToFloat64(s.requests.WithLabelValues("GET", "/boom", "500")); v != 1 {
		t.Errorf("GET /boom counted %v times under 500; want 1 (series: %v)", v, got)
	}
	if len(got) != 2 {
		t.Errorf("series %v; want GET /hints 201 and GET /boom 500 only", got)
	}
	if v := testutil.ToFloat64(s.inFlight); v != 0 {
		t.Errorf("in-flight gauge %v after every request ended; want 0", v)
	}
}

// labelSets lists a vector's series as "label=value,…" for messages.
func labelSets(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	r := prometheus.NewPedanticRegistry()
	r.MustRegister(c)
	return series(t, r)
}
