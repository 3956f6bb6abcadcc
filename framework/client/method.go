package client

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/go-kit/log/level"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// Method names the API method a call serves ("Get"): the call gets a span
// named "service.Method" around its attempts, and its latency and outcome
// are reported per method (MethodObserver). Generated clients pass it for
// every method.
func Method(name string) CallOption { return func(r *request) { r.apiMethod = name } }

// DoMethod is Do for a call of the API method named method ("Get"): like
// an HTTP call named with Method, it is one span "service.Method" around
// its attempts, and its latency and outcome are reported per method
// (MethodObserver). Other transports' clients (grpcclient) name their
// calls with it, so a method has the same span and series whichever
// transport carries it.
func (c *Client) DoMethod(ctx context.Context, method string, req any, idempotent bool) (resp any, err error) {
	ctx, done := c.observeMethod(ctx, method)
	defer func() { done(err) }()
	return c.do(ctx, method, req, idempotent)
}

// MethodObserver is an Observer that also hears each finished call of a
// named method (Method): its latency and its outcome code — "ok", the
// error's svcerr code ("user_not_found"), the HTTP status of a non-Warren
// answer ("502"), or "unavailable", "deadline_exceeded", "canceled".
// Package metrics has a Prometheus one.
type MethodObserver interface {
	MethodDone(service, method, code string, d time.Duration)
}

// ServiceObserver is an Observer that also hears when a client of service
// is built, before any call: a metrics observer makes the service's
// counters then, at 0, so a dashboard shows 0 rather than no data and
// rate() sees the first increment (report j47c).
type ServiceObserver interface {
	ClientStarted(service string)
}

// StaleObserver is an Observer that also hears when a client with
// WithSnapshot starts serving the snapshot file instead of the registry
// (stale true) and when the registry's answer replaces it (false). The
// calls are balanced per client: false once after each true (at the
// latest when the client closes), so an observer shared by several
// clients of a service can count them, as package metrics' does.
type StaleObserver interface {
	DiscoveryStale(service string, stale bool)
}

// WithTracerProvider makes each call of a named method a span
// "service.Method" (the attempts' HTTP spans are its children). Default:
// no spans of the client's own.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) error {
		if tp == nil {
			return errors.New("client.WithTracerProvider(nil)")
		}
		c.tp, c.tracer = tp, tp.Tracer("github.com/warren-mesh/warren/framework/client")
		return nil
	}
}

// WithPropagator is for transports that trace their own attempts
// (grpcclient): with it each attempt is a client span, a child of the
// call's span, whose context prop writes into the request's metadata;
// the spans come from WithTracerProvider's provider (without one, a no-op
// provider that still passes the caller's context on). HTTP attempts are
// traced by a RoundTripper instead (WithRoundTripper with
// tracing.Transport), which ignores this option.
func WithPropagator(prop propagation.TextMapPropagator) Option {
	return func(c *config) error {
		if prop == nil {
			return errors.New("client.WithPropagator(nil)")
		}
		c.prop = prop
		return nil
	}
}

// TracingOf returns the tracer provider and propagator that opts set with
// WithTracerProvider and WithPropagator (nil for either not set), so
// another transport's client given the same options (bootstrap's
// Deps.ClientOptions) traces its attempts as configured.
func TracingOf(opts ...Option) (trace.TracerProvider, propagation.TextMapPropagator) {
	c := configOf(opts)
	return c.tp, c.prop
}

// observeMethod starts what a named call reports; done finishes it with
// the call's error.
func (c *Client) observeMethod(ctx context.Context, method string) (context.Context, func(error)) {
	start := time.Now()
	var span trace.Span
	if c.tracer != nil {
		ctx, span = c.tracer.Start(ctx, c.service+"."+method, trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("rpc.service", c.service), attribute.String("rpc.method", method)))
	}
	return ctx, func(err error) {
		code := OutcomeCode(err)
		if mo, ok := c.obs.(MethodObserver); ok {
			mo.MethodDone(c.service, method, code, time.Since(start))
		}
		if span != nil {
			span.SetAttributes(attribute.String("warren.code", code))
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, code)
			}
			span.End()
		}
		if err != nil && c.logger != nil {
			kv := []any{"msg", "call failed", "service", c.service, "method", method, "code", code, "err", err}
			if id, ok := requestid.FromContext(ctx); ok {
				kv = append(kv, "request_id", id) // the caller's request: its access line has it too
			}
			if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
				kv = append(kv, "trace_id", sc.TraceID().String())
			}
			level.Debug(c.logger).Log(kv...)
		}
	}
}

// OutcomeCode is the code a call's outcome is counted under: "ok", the
// svcerr code of a Warren error answer, the HTTP status of another
// answer, or the kind of a failure that got no answer.
func OutcomeCode(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *Error
	switch {
	case errors.As(err, &ce) && ce.Code != "":
		return ce.Code
	case errors.As(err, &ce):
		return strconv.Itoa(ce.Status)
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return string(svcerr.DeadlineExceeded)
	}
	var se *svcerr.Error
	if errors.As(err, &se) {
		return se.Code
	}
	return string(svcerr.Unavailable)
}
