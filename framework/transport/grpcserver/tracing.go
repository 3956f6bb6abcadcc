package grpcserver

import (
	"errors"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/tracing"
)

// WithTracing gives every call a server span (otelgrpc's stats handler,
// tracing.GRPCServer) that continues the caller's trace from the W3C
// traceparent prop reads in its metadata, or starts one. The span is
// named by the full method ("user.v1.UserService/Get") and records the
// status code. grpc.health.v1 (probes and the self-check) gets no span,
// as HTTP's /healthz and /readyz get none. With a no-op provider
// (noop.NewTracerProvider, what tracing.NewProvider returns without an
// exporter) there are no spans and only the caller's context is put into
// the call's context (grpctransport.ExtractTraceContext), so the
// service's own calls continue its trace. opts are tracing's server
// options: tracing.WithPublicEndpoint starts a trace per call, linked
// to the caller's, and drops its baggage. bootstrap passes the process's
// provider (Deps.GRPCServerOptions).
func WithTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator, opts ...tracing.ServerOption) Option {
	return func(o *options) error {
		if tp == nil || prop == nil {
			return errors.New("WithTracing needs a tracer provider and a propagator")
		}
		for _, opt := range opts {
			if opt == nil {
				return errors.New("WithTracing: nil tracing.ServerOption")
			}
		}
		o.serverOpts = append(o.serverOpts, grpc.StatsHandler(tracing.GRPCServer(tp, prop, opts...)))
		return nil
	}
}
