package grpcserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/tracing"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// wrappedProvider is a provider Warren cannot recognise by its type.
type wrappedProvider struct{ trace.TracerProvider }

// review s58 F2: with any provider that makes no spans, not only the
// noop.TracerProvider type, a public endpoint's gRPC service gets
// nothing of the caller's trace context, and a call it makes (through
// tracing.Transport) sends no traceparent of the caller's trace. Before,
// the global provider and trace.NewNoopTracerProvider kept the caller's
// span context (sampled flag included) in the call's context.
func TestWithTracing_PublicEndpointWithASpanlessProviderFollowsNothing(t *testing.T) {
	global := otel.GetTracerProvider()
	if _, sdk := global.(*sdktrace.TracerProvider); sdk {
		t.Fatal("a test set OpenTelemetry's global provider; this one needs the default")
	}
	var down struct {
		mu               sync.Mutex
		traceparent, bag string
		calls            int
	}
	downSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down.mu.Lock()
		defer down.mu.Unlock()
		down.calls++
		down.traceparent, down.bag = r.Header.Get("traceparent"), r.Header.Get("baggage")
	}))
	t.Cleanup(downSrv.Close)

	for name, tp := range map[string]trace.TracerProvider{
		"otel.GetTracerProvider() with no SDK set":   global,
		"trace.NewNoopTracerProvider()":              trace.NewNoopTracerProvider(), //nolint:staticcheck // deprecated, still a provider users pass
		"a wrapper of noop.NewTracerProvider()":      wrappedProvider{noop.NewTracerProvider()},
		"a wrapper of otel.GetTracerProvider()":      wrappedProvider{global},
		"noop.NewTracerProvider() (bootstrap's off)": noop.NewTracerProvider(),
	} {
		down.mu.Lock()
		down.traceparent, down.bag, down.calls = "", "", 0
		down.mu.Unlock()
		client := &http.Client{Transport: tracing.Transport(tp, tracing.Propagator())(&http.Transport{})}
		var callMu sync.Mutex
		var callErr error
		callsOut := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			r, err := http.NewRequestWithContext(ctx, "GET", downSrv.URL, nil)
			if err == nil {
				var resp *http.Response
				if resp, err = client.Do(r); err == nil {
					resp.Body.Close()
				}
			}
			callMu.Lock()
			callErr = err
			callMu.Unlock()
			return h(ctx, req)
		}
		var in inCall
		r := serve(t, "n-public-spanless", grpcserver.WithTracing(tp, tracing.Propagator(), tracing.WithPublicEndpoint()),
			grpcserver.WithUnaryInterceptors(in.interceptor, callsOut), grpcserver.WithServerOptions(grpc.WaitForHandlers(true)))
		callAsOutsider(t, r, "01")
		client.CloseIdleConnections()

		trID, bag, reqID, _, sampled := in.seen()
		callMu.Lock()
		if callErr != nil {
			t.Errorf("%s: the service's call failed: %v", name, callErr)
		}
		callMu.Unlock()
		if trID != (trace.TraceID{}).String() || bag != "" {
			t.Errorf("%s: the service saw trace %s (sampled %v), baggage %q; want no span context, no baggage", name, trID, sampled, bag)
		}
		if reqID != callerReqID {
			t.Errorf("%s: the service saw request ID %q; want %q", name, reqID, callerReqID)
		}
		down.mu.Lock()
		sent, sentBag, calls := down.traceparent, down.bag, down.calls
		down.mu.Unlock()
		if calls != 1 {
			t.Fatalf("%s: downstream got %d calls; want 1", name, calls)
		}
		if sent != "" || sentBag != "" {
			t.Errorf("%s: the service's call sent traceparent %q, baggage %q; want neither (the caller's trace is %s)", name, sent, sentBag, callerTrace)
		}
	}
}

// A check that the per-call fix (the stats handler's TagRPC) does not
// touch an SDK provider's call: the context the service gets is its own
// new trace's server span, not an empty one.
func TestWithTracing_PublicEndpointWithAnSDKKeepsItsOwnSpan(t *testing.T) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	var in inCall
	r := serve(t, "n-public-sdk", grpcserver.WithTracing(tp, tracing.Propagator(), tracing.WithPublicEndpoint()),
		grpcserver.WithUnaryInterceptors(in.interceptor), grpcserver.WithServerOptions(grpc.WaitForHandlers(true)))
	callAsOutsider(t, r, "01")
	trID, _, _, _, sampled := in.seen()
	if trID == (trace.TraceID{}).String() || trID == callerTrace || !sampled {
		t.Errorf("the service saw trace %s (sampled %v); want its own new, sampled trace", trID, sampled)
	}
}
