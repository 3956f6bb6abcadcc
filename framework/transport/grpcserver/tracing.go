package grpcserver

import (
	"errors"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/stats"

	"github.com/warren-mesh/warren/framework/grpctransport"
)

// WithTracing gives every call a server span (otelgrpc's stats handler)
// that continues the caller's trace from the W3C traceparent prop reads
// in its metadata, or starts one. The span is named by the full method
// ("user.v1.UserService/Get") and records the status code. grpc.health.v1
// (probes and the self-check) gets no span, as HTTP's /healthz and
// /readyz get none. With a no-op provider (noop.NewTracerProvider, what
// tracing.NewProvider returns without an exporter) there are no spans and
// only the caller's context is put into the call's context
// (grpctransport.ExtractTraceContext), so the service's own calls
// continue its trace. bootstrap
// passes the process's provider (Deps.GRPCServerOptions).
func WithTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) Option {
	return func(o *options) error {
		if tp == nil || prop == nil {
			return errors.New("WithTracing needs a tracer provider and a propagator")
		}
		if _, isNoop := tp.(noop.TracerProvider); isNoop {
			// No spans to make: only continue the caller's context, cheaply.
			o.serverOpts = append(o.serverOpts, grpc.StatsHandler(grpctransport.ExtractTraceContext(prop)))
			return nil
		}
		o.serverOpts = append(o.serverOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp),
			otelgrpc.WithPropagators(prop),
			// Warren's metrics are its own (package metrics); none from here.
			otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelgrpc.WithFilter(notHealth),
		)))
		return nil
	}
}

var healthPrefix = "/" + healthpb.Health_ServiceDesc.ServiceName + "/"

// notHealth is false for grpc.health.v1 calls: probes would drown the
// traffic in spans.
func notHealth(info *stats.RPCTagInfo) bool {
	return !strings.HasPrefix(info.FullMethodName, healthPrefix)
}
