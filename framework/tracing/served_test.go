package tracing

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// serve runs h in a real App (memory registry, loopback, free port) with
// Server as its HTTP middleware, as bootstrap wires it, and returns its
// base URL; the App stops when the test ends.
func serve(t *testing.T, h http.Handler, mw func(http.Handler) http.Handler) string {
	t.Helper()
	a, err := app.New("traced", h, memory.New(), app.WithListen("127.0.0.1:0"), app.WithID("traced-1"),
		app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20*time.Second), app.WithHTTPMiddleware(mw))
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

func do(t *testing.T, req *http.Request) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A handler that panics is answered 500 by the server's Recover, which
// wraps the tracing middleware from outside: the server span must still
// say so (error status, status code 500) and carry the route's name,
// or the trace of the worst failure a service has reads as a success.
func TestServer_SpanOfAPanickingHandlerIsAnError(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	rt := httptransport.NewRouter()
	rt.Handle("GET /boom/{id}", http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("bug") }))
	base := serve(t, rt, Server(tp, Propagator()))

	req, _ := http.NewRequest("GET", base+"/boom/7", nil)
	if got := do(t, req); got != http.StatusInternalServerError {
		t.Fatalf("answered %d; want 500", got)
	}
	got := spans.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans; want the server span", len(got))
	}
	s := got[0]
	if s.Name != "GET /boom/{id}" || s.Status.Code != codes.Error {
		t.Errorf("span %q status %v; want \"GET /boom/{id}\" with an error status", s.Name, s.Status)
	}
	var code int64
	var route string
	for _, a := range s.Attributes {
		switch a.Key {
		case "http.response.status_code":
			code = a.Value.AsInt64()
		case "http.route":
			route = a.Value.AsString()
		}
	}
	if code != 500 || route != "/boom/{id}" {
		t.Errorf("http.response.status_code %d, http.route %q; want 500 and /boom/{id}", code, route)
	}
}

// A span's attributes copy the request's User-Agent, Host and path as
// sent: a caller's 48 KB User-Agent (the server takes 64 KB of headers)
// made every span of its requests 48 KB in the exporter's batch of up to
// 512 (a collector refuses a batch over its 4 MiB message limit whole,
// good spans included). NewProvider bounds
// attribute values unless OTEL_*ATTRIBUTE_VALUE_LENGTH_LIMIT says how.
func TestNewProvider_HostileHeadersDoNotBloatSpans(t *testing.T) {
	t.Setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "")
	t.Setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "")
	var out syncbuf.Buffer
	tp, shutdown, err := NewProvider(context.Background(), Config{Service: "s", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	rt := httptransport.NewRouter()
	rt.Handle("GET /x", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	base := serve(t, rt, Server(tp, Propagator()))

	req, _ := http.NewRequest("GET", base+"/x", nil)
	req.Header.Set("User-Agent", strings.Repeat("A", 48<<10))
	if got := do(t, req); got != http.StatusOK {
		t.Fatalf("answered %d; want 200", got)
	}
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(out.String())
	if !strings.Contains(line, `"GET /x"`) || !strings.Contains(line, "user_agent.original") {
		t.Fatalf("no server span with a user agent in the output: %.300s", line)
	}
	if n := strings.Count(line, "A"); n > MaxAttributeValueLength+100 {
		t.Errorf("span line holds %d bytes of the User-Agent; want at most about %d", n, MaxAttributeValueLength)
	}
}

// A span is named by its route, or by its method before (or without) a
// Router: a method a caller makes up ("BREW", or 40 KB of letters) is no
// name, or every such word would be an operation of its own in the
// tracing backend, as long as the caller likes. Such spans are "HTTP"
// (OpenTelemetry's name for a method it does not know).
func TestServer_MadeUpMethodsDoNotNameSpans(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())
	plain := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}) // no Router: no route recorded
	base := serve(t, plain, Server(tp, Propagator()))

	for _, m := range []string{"GET", "BREW", strings.Repeat("X", 40<<10)} {
		req, _ := http.NewRequest(m, base+"/x", nil)
		if got := do(t, req); got != http.StatusOK {
			t.Fatalf("%.10s answered %d; want 200", m, got)
		}
	}
	var names []string
	for _, s := range spans.GetSpans() {
		names = append(names, s.Name)
	}
	if len(names) != 3 || names[0] != "GET" || names[1] != "HTTP" || names[2] != "HTTP" {
		for i := range names {
			names[i] = names[i][:min(len(names[i]), 20)]
		}
		t.Errorf("span names %q; want GET, HTTP, HTTP", names)
	}
}
