package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A call through Transport carries the caller's trace (traceparent) and
// baggage to the service; the service's Server middleware continues that
// trace with a span named after the route the Router matched.
func TestTransportAndServer_PropagateTheTraceAndNameTheSpanByRoute(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	prop := Propagator()

	var mu sync.Mutex
	var gotParent, gotBaggage string
	rt := httptransport.NewRouter()
	rt.Handle("GET /users/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotParent, gotBaggage = r.Header.Get("traceparent"), r.Header.Get("baggage")
		mu.Unlock()
	}))
	srv := httptest.NewServer(Server(tp, prop)(rt))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := baggage.NewMember("tenant", "acme")
	if err != nil {
		t.Fatal(err)
	}
	bag, _ := baggage.New(m)
	ctx = baggage.ContextWithBaggage(ctx, bag)
	ctx, parent := tp.Tracer("test").Start(ctx, "caller")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/users/7", nil)
	resp, err := (&http.Client{Transport: Transport(tp, prop)(http.DefaultTransport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	parent.End()

	traceID := parent.SpanContext().TraceID().String()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(gotParent, traceID) {
		t.Errorf("traceparent at the service %q; want the caller's trace %s", gotParent, traceID)
	}
	if gotBaggage != "tenant=acme" {
		t.Errorf("baggage at the service %q; want tenant=acme", gotBaggage)
	}
	var named bool
	for _, s := range spans.GetSpans() {
		if s.Name == "GET /users/{id}" && s.SpanContext.TraceID().String() == traceID {
			named = true
		}
	}
	if !named {
		var names []string
		for _, s := range spans.GetSpans() {
			names = append(names, s.Name)
		}
		t.Errorf("spans %v; want a server span \"GET /users/{id}\" in the caller's trace", names)
	}
}

// Sampling is parent-based: a request in a caller's sampled trace is
// recorded whatever SampleRatio says of new traces, and one in an
// unsampled trace is not.
func TestNewProvider_SamplingFollowsTheCallersDecision(t *testing.T) {
	var out syncbuf.Buffer
	tp, shutdown, err := NewProvider(context.Background(), Config{Service: "s", Stdout: &out, SampleRatio: 0.000001})
	if err != nil {
		t.Fatal(err)
	}
	h := Server(tp, Propagator())(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	// All-ones trace IDs: a ratio sampler alone never picks them.
	for _, flags := range []string{"01", "00"} {
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("traceparent", "00-ffffffffffffffffffffffffffff"+flags+"ff-00f067aa0ba902b7-"+flags)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "ffffffffffffffffffffffffffff01ff") {
		t.Errorf("the span in the caller's sampled trace was not recorded:\n%s", out.String())
	}
	if strings.Contains(out.String(), "ffffffffffffffffffffffffffff00ff") {
		t.Errorf("a span in the caller's unsampled trace was recorded")
	}
}
