package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/httptransport"
)

// observability.md: grpc.health.v1 checks are not counted; a panicking
// handler is counted INTERNAL (what Warren's outer interceptor answers),
// and the panic goes on up.
func TestServer_GRPCHealthNotCountedPanicIsInternal(t *testing.T) {
	s := NewServer(prometheus.NewRegistry())
	in := s.UnaryServerInterceptor()
	ok := func(context.Context, any) (any, error) { return "r", nil }
	in(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: grpctransport.HealthMethodPrefix + "Check"}, ok)
	if n := testutil.CollectAndCount(s.grpcRequests); n != 0 {
		t.Errorf("%d series after a health check; want none", n)
	}
	var p any
	func() {
		defer func() { p = recover() }()
		in(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/t.S/Boom"}, func(context.Context, any) (any, error) { panic("bug") })
	}()
	if p == nil {
		t.Error("the panic did not go on to the outer interceptor")
	}
	if v := testutil.ToFloat64(s.grpcRequests.WithLabelValues("/t.S/Boom", "Internal")); v != 1 {
		t.Errorf("panicking call counted %v times as Internal; want 1", v)
	}
}

// An unmatched request's method is a bounded label ("other" for one the
// client made up); the first status written is the one counted; the
// in-flight gauge returns to 0.
func TestServer_HTTPLabelsAndGauge(t *testing.T) {
	s := NewServer(prometheus.NewRegistry())
	rt := httptransport.NewRouter()
	rt.Handle("GET /x", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		w.WriteHeader(http.StatusInternalServerError) // superfluous: net/http keeps the first
	}))
	h := s.Middleware(rt)
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/nowhere", nil))
	if v := testutil.ToFloat64(s.requests.WithLabelValues("GET", "/x", "202")); v != 1 {
		t.Errorf("GET /x counted %v times with 202; want 1", v)
	}
	if n := testutil.CollectAndCount(s.requests); n != 2 {
		t.Errorf("%d request series; want 2 (GET /x 202, and other for BREW)", n)
	}
	if v := testutil.ToFloat64(s.requests.WithLabelValues("other", httptransport.UnmatchedRoute, "405")) +
		testutil.ToFloat64(s.requests.WithLabelValues("other", httptransport.UnmatchedRoute, "404")); v != 1 {
		t.Errorf("the BREW request is not under method \"other\"")
	}
	// A handler that is no Router records no route: still "other".
	plain := NewServer(prometheus.NewRegistry())
	plain.Middleware(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/", nil))
	if v := testutil.ToFloat64(plain.requests.WithLabelValues("other", httptransport.UnmatchedRoute, "404")); v != 1 {
		t.Errorf("BREW without a Router is not under method \"other\"")
	}
	if v := testutil.ToFloat64(s.inFlight); v != 0 {
		t.Errorf("in-flight gauge %v after every request ended; want 0", v)
	}
}

// WithoutProfiles serves /metrics alone: 404 for the profiles.
func TestHandler_WithoutProfilesIs404ForPprof(t *testing.T) {
	reg := prometheus.NewRegistry()
	for _, c := range []struct {
		opts []HandlerOption
		want int
	}{{nil, 200}, {[]HandlerOption{WithoutProfiles()}, 404}} {
		rec := httptest.NewRecorder()
		Handler(reg, c.opts...).ServeHTTP(rec, httptest.NewRequest("GET", "/debug/pprof/cmdline", nil))
		if rec.Code != c.want {
			t.Errorf("%d options: /debug/pprof/cmdline %d, want %d", len(c.opts), rec.Code, c.want)
		}
	}
}
