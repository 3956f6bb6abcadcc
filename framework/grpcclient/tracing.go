package grpcclient

import (
	"context"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/internal/attemptspan"
)

// attemptTracing is the stats handler of every instance's connection when
// the client options carry a propagator (client.WithPropagator): each
// attempt is a client span, a child of the call's span, named
// "call <package.Service>/<Method>" as an HTTP attempt is "call GET", and
// its context goes out in the call's metadata. Without a tracer provider,
// or with a no-op one (noop.NewTracerProvider, what tracing.NewProvider
// returns without an exporter), there are no spans to make and only the
// caller's context is passed on (grpctransport.InjectTraceContext).
func attemptTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) grpc.DialOption {
	if _, isNoop := tp.(noop.TracerProvider); tp == nil || isNoop {
		// No spans to make: only pass the caller's context on, cheaply.
		return grpc.WithStatsHandler(grpctransport.InjectTraceContext(prop))
	}
	return grpc.WithStatsHandler(attemptNames{otelgrpc.NewClientHandler(
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(prop),
		// Warren's metrics are its own (package metrics); none from here.
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	)})
}

// attemptNames renames otelgrpc's client spans: its name, the bare full
// method, is also the server span's, and "call …" tells the attempt from
// the call ("user.Get") and from the server's side at a glance. It also
// marks the span of an attempt the retry policy called off (HandleRPC).
type attemptNames struct{ stats.Handler }

func (h attemptNames) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	ctx = h.Handler.TagRPC(ctx, info)
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetName("call " + strings.TrimPrefix(info.FullMethodName, "/"))
	}
	return ctx
}

// HandleRPC marks, before otelgrpc ends it, the span of an attempt the
// retry policy cancelled because of its hedged pair. otelgrpc sets Error
// for every non-OK status, CANCELLED included, so each needless hedge
// (retry.ErrHedgeUnneeded: the attempt it hedged answered first) was a
// failure in error rates read from spans: its span gets
// warren.attempt.outcome=hedge_unneeded and status Ok, set first because
// the SDK ignores an Error after Ok (Unset would be overwritten). A first
// attempt outpaced by its hedge (retry.ErrOutpaced) gets
// warren.attempt.outcome=outpaced and stays an Error: its instance was
// slow. grpc-go hands HandleRPC its stream's context, a child of the
// attempt's, which carries the attempt's cause (checked by
// TestTracing_HedgeLoserIsNotAnErrorSpan).
func (h attemptNames) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	if end, ok := rs.(*stats.End); ok && end.Error != nil && ctx.Err() != nil {
		attemptspan.MarkCalledOff(ctx)
	}
	h.Handler.HandleRPC(ctx, rs)
}
