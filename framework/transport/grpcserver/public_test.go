package grpcserver_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/tracing"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

const (
	callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	callerSpan  = "00f067aa0ba902b7"
	callerReqID = "req-from-outside-1"
)

// inCall is what the service saw of a call's context.
type inCall struct {
	mu                        sync.Mutex
	trace, bag, reqID, tenant string
	sampled                   bool
}

func (c *inCall) interceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	sc := trace.SpanContextFromContext(ctx)
	id, _ := requestid.FromContext(ctx)
	md, _ := reqmeta.FromContext(ctx)
	c.mu.Lock()
	c.trace, c.sampled, c.bag = sc.TraceID().String(), sc.IsSampled(), baggage.FromContext(ctx).String()
	c.reqID, c.tenant = id, md.Get("x-tenant")
	c.mu.Unlock()
	return h(ctx, req)
}

func (c *inCall) seen() (trace, bag, reqID, tenant string, sampled bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.trace, c.bag, c.reqID, c.tenant, c.sampled
}

// callAsOutsider makes one Say call with a caller's trace context
// (traceparent with flags, baggage) and metadata that is not trace
// context, then shuts r down so every span has ended.
func callAsOutsider(t *testing.T, r *running, flags string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc := dial(t, r.ep)
	out := metadata.NewOutgoingContext(ctx, metadata.Pairs(
		"traceparent", "00-"+callerTrace+"-"+callerSpan+"-"+flags,
		"baggage", "tenant=evil",
		requestid.Header, callerReqID,
		"x-tenant", "acme"))
	if _, err := grpctest.Say(out, cc, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil { // WaitForHandlers: spans ended
		t.Fatal(err)
	}
}

// docs/observability.md, "Callers outside the mesh": with
// tracing.WithPublicEndpoint a gRPC call's server span starts a trace of
// its own, linked to the caller's span; the caller's sampled flag does
// not keep the service's sampler from recording it, its baggage does not
// reach the service, and its request ID and metadata still do. Without
// the option the span is the caller's child and follows its decision.
func TestWithTracing_PublicEndpointStartsATraceOfItsOwnLinkedToTheCallers(t *testing.T) {
	for _, c := range []struct {
		flags  string
		public bool
	}{{"01", false}, {"01", true}, {"00", false}, {"00", true}} {
		rec := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
		t.Cleanup(func() { tp.Shutdown(context.Background()) })
		var opts []tracing.ServerOption
		if c.public {
			opts = append(opts, tracing.WithPublicEndpoint())
		}
		var in inCall
		r := serve(t, "n-public", grpcserver.WithTracing(tp, tracing.Propagator(), opts...),
			grpcserver.WithUnaryInterceptors(in.interceptor), grpcserver.WithServerOptions(grpc.WaitForHandlers(true)))
		callAsOutsider(t, r, c.flags)

		trID, bag, reqID, tenant, sampled := in.seen()
		if reqID != callerReqID || tenant != "acme" {
			t.Errorf("flags %s public=%v: the service saw request ID %q, x-tenant %q; want %q, acme", c.flags, c.public, reqID, tenant, callerReqID)
		}
		ended := rec.Ended()
		if !c.public {
			if c.flags == "00" {
				if sampled || len(ended) != 0 {
					t.Errorf("flags 00 public=false: sampled=%v, %d spans; want the caller's decision (none)", sampled, len(ended))
				}
				continue
			}
			if len(ended) != 1 || trID != callerTrace || ended[0].Parent().SpanID().String() != callerSpan || bag != "tenant=evil" {
				t.Errorf("flags 01 public=false: %d spans, trace %s, baggage %q; want one span, the caller's child, its baggage", len(ended), trID, bag)
			}
			continue
		}
		if !sampled || len(ended) != 1 {
			t.Fatalf("flags %s public=true: sampled=%v, %d spans; want one recorded by the service's sampler", c.flags, sampled, len(ended))
		}
		s := ended[0]
		if trID == callerTrace || s.SpanContext().TraceID().String() != trID || s.Parent().IsValid() {
			t.Errorf("flags %s public=true: span in trace %s (service saw %s), parent %s; want a new trace, no parent", c.flags, s.SpanContext().TraceID(), trID, s.Parent().SpanID())
		}
		if l := s.Links(); len(l) != 1 || l[0].SpanContext.TraceID().String() != callerTrace || l[0].SpanContext.SpanID().String() != callerSpan {
			t.Errorf("flags %s public=true: links %+v; want one, to the caller's span", c.flags, l)
		}
		if bag != "" {
			t.Errorf("flags %s public=true: the service saw baggage %q; want none", c.flags, bag)
		}
	}
}

// With tracing off a public endpoint follows nothing of the caller's:
// no trace context, no baggage, for the service's calls to carry on.
func TestWithTracing_PublicEndpointWithTracingOffFollowsNothing(t *testing.T) {
	for _, public := range []bool{false, true} {
		var opts []tracing.ServerOption
		if public {
			opts = append(opts, tracing.WithPublicEndpoint())
		}
		var in inCall
		r := serve(t, "n-public-off", grpcserver.WithTracing(noop.NewTracerProvider(), tracing.Propagator(), opts...),
			grpcserver.WithUnaryInterceptors(in.interceptor), grpcserver.WithServerOptions(grpc.WaitForHandlers(true)))
		callAsOutsider(t, r, "01")
		trID, bag, reqID, _, _ := in.seen()
		followed := trID == callerTrace && bag == "tenant=evil"
		ignored := trID == trace.TraceID{}.String() && bag == ""
		if public && !ignored || !public && !followed {
			t.Errorf("public=%v: the service saw trace %s, baggage %q", public, trID, bag)
		}
		if reqID != callerReqID {
			t.Errorf("public=%v: the service saw request ID %q; want %q", public, reqID, callerReqID)
		}
	}
}

func TestWithTracing_RefusesANilTracingOption(t *testing.T) {
	if _, err := grpcserver.New(func(*grpc.Server) {}, grpcserver.WithTracing(noop.NewTracerProvider(), tracing.Propagator(), nil)); err == nil {
		t.Error("WithTracing(…, nil option) accepted")
	}
}
