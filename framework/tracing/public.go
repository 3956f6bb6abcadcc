package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/stats"

	"github.com/warren-mesh/warren/framework/grpctransport"
)

// ServerOption changes how Server (HTTP) and GRPCServer treat the trace
// context a caller sends.
type ServerOption func(*serverOptions)

type serverOptions struct {
	public bool
}

func newServerOptions(opts []ServerOption) serverOptions {
	var o serverOptions
	for _, opt := range opts {
		if opt == nil {
			panic("tracing: nil ServerOption")
		}
		opt(&o)
	}
	return o
}

// WithPublicEndpoint is for a service that takes requests from outside
// the mesh (OpenTelemetry's otelhttp.WithPublicEndpoint): each request
// starts a trace of its own, sampled by this service's sampler, and the
// caller's span context (traceparent) is kept only as a link on the
// server span. The caller's sampled flag can then neither force nor
// suppress recording, its trace ID is not adopted, and its baggage is
// dropped: none of it reaches the handler's context or the calls the
// service makes. The headers themselves are left in the request (a
// handler, reqmeta, still sees them), as is everything not trace
// context (the request ID). With a provider that makes no spans (tracing
// off: noop.NewTracerProvider, or OpenTelemetry's global provider before
// an SDK is set, or trace.NewNoopTracerProvider) nothing of the caller's
// is followed at all: there is no span to link from.
//
// Without it a server follows its caller, as services inside the mesh
// must, or every hop would start a trace of its own.
func WithPublicEndpoint() ServerOption {
	return func(o *serverOptions) { o.public = true }
}

// inbound returns the propagator a server extracts the caller's context
// with, and whether its spans start a new trace linked to the caller's.
func (o serverOptions) inbound(tp trace.TracerProvider, prop propagation.TextMapPropagator) (propagation.TextMapPropagator, bool) {
	if !o.public {
		return prop, false
	}
	if _, off := tp.(noop.TracerProvider); off {
		// Nothing to link from: extracting would be wasted. Only a
		// shortcut: forgetCaller makes other spanless providers safe.
		return spanContextOnly{prop: prop, none: true}, false
	}
	return spanContextOnly{prop: prop}, true
}

// forgetCaller returns ctx without the caller's span context if the
// server span did not replace it, and whether it did so. A tracer that
// makes no spans ignores WithNewRoot and keeps the remote span context
// extracted for the link (the global provider before an SDK is set,
// trace.NewNoopTracerProvider, a wrapper of either), and the handler's
// calls would carry the caller's trace on, sampled flag included. A span
// this server started is never remote, so a check per request covers
// every provider, and one that gets an SDK later, at no allocation when
// the span is the server's own.
func forgetCaller(ctx context.Context) (context.Context, bool) {
	if !trace.SpanContextFromContext(ctx).IsRemote() {
		return ctx, false
	}
	return trace.ContextWithSpanContext(ctx, trace.SpanContext{}), true
}

// publicGRPC is a public endpoint's stats handler: the context otelgrpc's
// TagRPC returns is the call's (the handler's), so it is fixed there.
type publicGRPC struct{ stats.Handler }

func (h publicGRPC) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	ctx, _ = forgetCaller(h.Handler.TagRPC(ctx, info))
	return ctx
}

// spanContextOnly extracts with prop and keeps only the span context
// (for the link a public endpoint's span gets), so baggage, and whatever
// else a propagator puts in the context, stays out; with none set it
// extracts nothing. It never injects: servers only extract.
type spanContextOnly struct {
	prop propagation.TextMapPropagator
	none bool
}

func (p spanContextOnly) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	if p.none {
		return ctx
	}
	sc := trace.SpanContextFromContext(p.prop.Extract(ctx, carrier))
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

func (spanContextOnly) Inject(context.Context, propagation.TextMapCarrier) {}

func (p spanContextOnly) Fields() []string { return p.prop.Fields() }

// publicHTTP is otelhttp's option for a span that starts a new trace
// (linked to the caller's span context, if any) for every request.
func publicHTTP() otelhttp.Option {
	return otelhttp.WithPublicEndpointFn(func(*http.Request) bool { return true })
}

// GRPCServer returns a gRPC server stats handler that gives every call a
// server span (otelgrpc's) continuing the caller's trace from the W3C
// traceparent prop reads in its metadata, or starting one; with
// WithPublicEndpoint every call starts its own trace, as Server does for
// HTTP. grpc.health.v1 calls get no span. With a no-op provider only the
// caller's context is put into the call's context
// (grpctransport.ExtractTraceContext; nothing with WithPublicEndpoint,
// whatever the provider).
// grpcserver.WithTracing installs it.
func GRPCServer(tp trace.TracerProvider, prop propagation.TextMapPropagator, opts ...ServerOption) stats.Handler {
	in, newRoot := newServerOptions(opts).inbound(tp, prop)
	if _, off := tp.(noop.TracerProvider); off {
		// No spans to make: only continue the caller's context, cheaply.
		return grpctransport.ExtractTraceContext(in)
	}
	hopts := []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(in),
		// Warren's metrics are its own (package metrics); none from here.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelgrpc.WithFilter(notHealth),
	}
	if !newRoot {
		return otelgrpc.NewServerHandler(hopts...)
	}
	hopts = append(hopts, otelgrpc.WithPublicEndpoint())
	return publicGRPC{otelgrpc.NewServerHandler(hopts...)}
}

// notHealth is false for grpc.health.v1 calls: probes would drown the
// traffic in spans, as HTTP's /healthz and /readyz would.
func notHealth(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, grpctransport.HealthMethodPrefix)
}
