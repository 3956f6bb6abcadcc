package tracing

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// wrappedProvider is a provider Warren cannot recognise by its type.
type wrappedProvider struct{ trace.TracerProvider }

// spanlessProviders are providers that make no spans and so ignore
// WithNewRoot, other than the noop.TracerProvider value bootstrap uses.
func spanlessProviders(t *testing.T) map[string]trace.TracerProvider {
	t.Helper()
	global := otel.GetTracerProvider()
	if _, sdk := global.(*sdktrace.TracerProvider); sdk {
		t.Fatal("a test set OpenTelemetry's global provider; this one needs the default")
	}
	return map[string]trace.TracerProvider{
		"otel.GetTracerProvider() with no SDK set":   global,
		"trace.NewNoopTracerProvider()":              trace.NewNoopTracerProvider(), //nolint:staticcheck // deprecated, still a provider users pass
		"a wrapper of noop.NewTracerProvider()":      wrappedProvider{noop.NewTracerProvider()},
		"a wrapper of otel.GetTracerProvider()":      wrappedProvider{global},
		"noop.NewTracerProvider() (bootstrap's off)": noop.NewTracerProvider(),
	}
}

// downstream records the trace context headers of the calls it gets.
type downstream struct {
	mu               sync.Mutex
	traceparent, bag string
	calls            int
}

func (d *downstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	d.traceparent, d.bag = r.Header.Get("traceparent"), r.Header.Get("baggage")
}

func (d *downstream) seen() (traceparent, bag string, calls int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.traceparent, d.bag, d.calls
}

// review s58 F2: with any provider that makes no spans, not only the
// noop.TracerProvider type, a public endpoint's handler gets nothing of
// the caller's trace context, and a call it makes (through Transport)
// sends no traceparent of the caller's trace. Before, the global
// provider and trace.NewNoopTracerProvider kept the caller's span
// context, and the call sent the caller's traceparent on verbatim.
func TestServer_PublicEndpointWithASpanlessProviderFollowsNothing(t *testing.T) {
	for name, tp := range spanlessProviders(t) {
		var down downstream
		downURL := serve(t, &down, func(h http.Handler) http.Handler { return h })
		client := &http.Client{Transport: Transport(tp, Propagator())(&http.Transport{})}
		t.Cleanup(client.CloseIdleConnections)

		var mu sync.Mutex
		var sc trace.SpanContext
		var bag string
		var callErr error
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, err := http.NewRequestWithContext(r.Context(), "GET", downURL+"/down", nil)
			if err == nil {
				var resp *http.Response
				if resp, err = client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
			mu.Lock()
			defer mu.Unlock()
			sc, bag, callErr = trace.SpanContextFromContext(r.Context()), baggage.FromContext(r.Context()).String(), err
		})
		base := serve(t, h, Server(tp, Propagator(), WithPublicEndpoint()))
		if got := do(t, callerRequest(t, base+"/x", "01")); got != http.StatusOK {
			t.Fatalf("%s: answered %d; want 200", name, got)
		}
		mu.Lock()
		if callErr != nil {
			t.Errorf("%s: the handler's call failed: %v", name, callErr)
		}
		if sc.TraceID().String() == callerTrace || sc.IsValid() || bag != "" {
			t.Errorf("%s: the handler saw trace %s (valid %v, sampled %v), baggage %q; want no span context, no baggage",
				name, sc.TraceID(), sc.IsValid(), sc.IsSampled(), bag)
		}
		mu.Unlock()
		sent, sentBag, calls := down.seen()
		if calls != 1 {
			t.Fatalf("%s: downstream got %d calls; want 1", name, calls)
		}
		if sent != "" || sentBag != "" {
			t.Errorf("%s: the handler's call sent traceparent %q, baggage %q; want neither (the caller's trace is %s)", name, sent, sentBag, callerTrace)
		}
	}
}

// The per-request check costs an SDK provider's requests no allocation:
// their span is the server's own (not remote), and ctx is kept.
func TestForgetCaller_KeepsTheServersOwnSpanWithoutAllocating(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(context.Background())
	remote := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	ctx, span := tp.Tracer("t").Start(remote, "server", trace.WithNewRoot())
	defer span.End()
	allocs := testing.AllocsPerRun(100, func() {
		if got, forgot := forgetCaller(ctx); forgot || got != ctx {
			t.Fatal("forgetCaller replaced the server's own span")
		}
	})
	if allocs != 0 {
		t.Errorf("forgetCaller allocated %v times per request; want 0", allocs)
	}
	if got, forgot := forgetCaller(remote); !forgot || trace.SpanContextFromContext(got).IsValid() {
		t.Error("forgetCaller kept the caller's remote span context")
	}
}
