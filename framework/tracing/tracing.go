// Package tracing is Warren's OpenTelemetry wiring: HTTP middleware that
// starts a server span per request, a RoundTripper wrapper that starts a
// client span per attempt, both propagating W3C traceparent, and a
// TracerProvider with the exporters the configuration names.
//
// Nothing here reads or sets OpenTelemetry's global provider or
// propagator: providers and propagators are passed in, so a library user
// keeps control of the process's globals. With tracing off, pass a no-op
// provider (NewProvider returns one): incoming trace context still flows
// through to outgoing calls, so one service without an exporter does not
// break a trace that crosses it.
package tracing

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/internal/attemptspan"
	"github.com/warren-mesh/warren/internal/redact"
)

// Propagator is W3C trace context (traceparent, tracestate) and baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// Server returns middleware that continues the caller's trace (or starts
// one) with a server span per request, named after the route pattern
// ("GET /users/{id}") once the Router has matched it. WithPublicEndpoint
// starts a trace per request instead, for a service outside callers reach.
func Server(tp trace.TracerProvider, prop propagation.TextMapPropagator, opts ...ServerOption) func(http.Handler) http.Handler {
	o := newServerOptions(opts)
	in, newRoot := o.inbound(tp, prop)
	hopts := []otelhttp.Option{
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(in),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		// Called at the start (no route yet: the method) and again
		// after the handler, when the Router has recorded the route.
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if route := httptransport.RouteOf(r.Context()); route != "" {
				return route
			}
			return spanMethod(r.Method)
		}),
	}
	if newRoot {
		hopts = append(hopts, publicHTTP())
	}
	return func(next http.Handler) http.Handler {
		named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sw := &statusWriter{ResponseWriter: w}
			defer func() {
				span := trace.SpanFromContext(r.Context())
				if route := httptransport.RouteOf(r.Context()); route != "" {
					span.SetName(route)
					if _, path, ok := strings.Cut(route, " "); ok {
						span.SetAttributes(attribute.String("http.route", path))
					}
				}
				if p := recover(); p != nil {
					// The server's Recover, outside this middleware,
					// answers 500 (http.ErrAbortHandler: cuts the
					// connection); otelhttp ends the span without a
					// status, so the panic's trace read as a success.
					msg := fmt.Sprint("panic: ", p)
					if len(msg) > 200 { // a status description has no attribute limit
						msg = strings.ToValidUTF8(msg[:200], "") + "…"
					}
					span.SetStatus(otelcodes.Error, msg)
					if sw.code != 0 {
						span.SetAttributes(attribute.Int("http.response.status_code", sw.code))
					} else if p != http.ErrAbortHandler { //nolint:errorlint // a sentinel, compared as net/http does
						span.SetAttributes(attribute.Int("http.response.status_code", http.StatusInternalServerError))
					}
					panic(p)
				}
			}()
			in := r // r stays the span's, for the deferred naming
			if o.public {
				if ctx, forgot := forgetCaller(r.Context()); forgot {
					in = r.WithContext(ctx)
				}
			}
			next.ServeHTTP(sw, in)
		})
		h := otelhttp.NewHandler(named, "server", hopts...)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h.ServeHTTP(w, httptransport.WithRouteSlot(r))
		})
	}
}

// spanMethod names a span of a request no route has named: its method
// if it is a standard one, else "HTTP", as OpenTelemetry does, since a
// caller can send any word (of up to the header limit) as a method, and
// each would be an operation of its own in a tracing backend.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}

// Transport returns a RoundTripper wrapper (client.WithRoundTripper) that
// starts a client span per request and sends the trace context along.
//
// An attempt the retry policy called off because the other attempt of a
// hedged pair answered first (retry.ErrHedgeUnneeded) did not fail: its
// span gets warren.attempt.outcome=hedge_unneeded and status Ok, not the
// Error "context canceled" otelhttp gives every cancelled request, which
// counted each needless hedge as a failure in error rates read from
// spans. A first attempt outpaced by its hedge (retry.ErrOutpaced) gets
// warren.attempt.outcome=outpaced and stays an Error: its instance was
// slow. With a no-op provider (tracing off) nothing is added.
func Transport(tp trace.TracerProvider, prop propagation.TextMapPropagator) func(http.RoundTripper) http.RoundTripper {
	_, off := tp.(noop.TracerProvider)
	return func(rt http.RoundTripper) http.RoundTripper {
		if !off {
			rt = calledOff{rt}
		}
		return otelhttp.NewTransport(rt,
			otelhttp.WithTracerProvider(tp),
			otelhttp.WithPropagators(prop),
			otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
			otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "call " + r.Method }),
		)
	}
}

// calledOff sits inside otelhttp's Transport, so it sees an attempt's
// failure (and its answer's body's) before otelhttp marks the span
// Error: the SDK ignores an Error after Ok (Ok is final), while Unset
// cannot be kept, as otelhttp's Error would replace it. Order matters.
type calledOff struct{ next http.RoundTripper }

func (c calledOff) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err != nil {
		attemptspan.MarkCalledOff(r.Context())
		return resp, err
	}
	// The client reads the body inside the attempt: a hedge called off
	// there fails its read. Wrapped only when there is a span to mark and
	// a read that can fail: an answer otelhttp marks Error anyway (4xx,
	// 5xx) and a protocol switch (a body that writes) are left alone.
	if resp.StatusCode < 400 && resp.Body != nil && resp.Body != http.NoBody && trace.SpanFromContext(r.Context()).IsRecording() {
		if _, rw := resp.Body.(io.Writer); !rw {
			resp.Body = &calledOffBody{ReadCloser: resp.Body, ctx: r.Context()}
		}
	}
	return resp, nil
}

type calledOffBody struct {
	io.ReadCloser
	ctx context.Context
}

func (b *calledOffBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is returned unwrapped by contract
		attemptspan.MarkCalledOff(b.ctx)
	}
	return n, err
}

// Config says where spans go. Both exporters may be on at once.
type Config struct {
	Service, Version, InstanceID string
	// OTLPEndpoint is an OTLP/gRPC collector: "http://host:4317" for
	// plaintext, "https://host:4317" or "host:4317" for TLS. Empty: off.
	// The exporter also reads the standard OTEL_EXPORTER_OTLP_* variables
	// (headers carrying API keys belong there, not on a command line).
	OTLPEndpoint string
	// Stdout, when not nil, gets each span as one JSON line when it ends.
	Stdout io.Writer
	// Logger, when not nil, gets the exporters' failures (a collector
	// that does not answer) as level=warn lines in the service's own log
	// format, at most one per ExportErrorEvery with the count in between.
	// Without it they go where OpenTelemetry sends them by default, its
	// process-wide error handler (the standard library's log, on stderr).
	// Nothing global is set either way.
	Logger log.Logger
	// SampleRatio is the share of new traces recorded (parent-based: a
	// span in a caller's trace follows the caller's decision). 0 or 1:
	// every trace, unless OTEL_TRACES_SAMPLER says otherwise (the SDK
	// reads it when no sampler is given).
	SampleRatio float64
}

// MaxAttributeValueLength bounds a span attribute's value (in
// characters) unless OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT or
// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT set another bound.
const MaxAttributeValueLength = 2048

// ExportErrorEvery is how often at most Config.Logger gets an export
// failure line; the failures in between are counted in the next one,
// written on a later export (failed or not) or at shutdown.
const ExportErrorEvery = 10 * time.Second

// NewProvider returns the provider cfg asks for and its shutdown, which
// flushes spans not yet exported. With no exporter it returns a no-op
// provider (which still propagates incoming context) and a no-op shutdown.
func NewProvider(ctx context.Context, cfg Config) (trace.TracerProvider, func(context.Context) error, error) {
	if cfg.OTLPEndpoint == "" && cfg.Stdout == nil {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	attrs := []attribute.KeyValue{attribute.String("service.name", cfg.Service)}
	if cfg.Version != "" {
		attrs = append(attrs, attribute.String("service.version", cfg.Version))
	}
	if cfg.InstanceID != "" {
		attrs = append(attrs, attribute.String("service.instance.id", cfg.InstanceID))
	}
	// Attributes copy what callers send (User-Agent, Host, the path),
	// unbounded by default: one caller's 48 KB header made each of its
	// spans 48 KB, and a batch over the collector's message limit is
	// refused whole, other requests' spans with it.
	limits := sdktrace.NewSpanLimits() // the OTEL_*_LIMIT variables, if set
	if limits.AttributeValueLengthLimit < 0 {
		limits.AttributeValueLengthLimit = MaxAttributeValueLength
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(resource.NewSchemaless(attrs...)), sdktrace.WithRawSpanLimits(limits)}
	// Without a sampler the SDK takes OTEL_TRACES_SAMPLER, else
	// ParentBased(AlwaysSample): a span per request, which under a flood
	// fills the batch queue (2048 spans) and the rest are dropped.
	if r := cfg.SampleRatio; r > 0 && r < 1 {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r))))
	}
	if cfg.OTLPEndpoint != "" {
		var eo []otlptracegrpc.Option
		if strings.Contains(cfg.OTLPEndpoint, "://") {
			eo = append(eo, otlptracegrpc.WithEndpointURL(cfg.OTLPEndpoint))
		} else {
			eo = append(eo, otlptracegrpc.WithEndpoint(cfg.OTLPEndpoint))
		}
		exp, err := otlptracegrpc.New(ctx, eo...)
		if err != nil {
			return nil, nil, fmt.Errorf("tracing: OTLP exporter for %s: %w", redact.URL(cfg.OTLPEndpoint), err)
		}
		opts = append(opts, sdktrace.WithBatcher(logErrors(exp, "otlp", cfg.Logger)))
	}
	if cfg.Stdout != nil {
		exp, err := newStdoutExporter(cfg.Stdout)
		if err != nil {
			return nil, nil, fmt.Errorf("tracing: stdout exporter: %w", err)
		}
		// Synchronous, so the demo shows a span the moment it ends.
		opts = append(opts, sdktrace.WithSyncer(logErrors(exp, "stdout", cfg.Logger)))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	return tp, func(ctx context.Context) error {
		err := tp.Shutdown(ctx)
		switch {
		case err == nil, errors.Is(err, context.Canceled):
			return nil
		case errors.Is(err, context.DeadlineExceeded) && cfg.OTLPEndpoint != "":
			// The exporter was still retrying (a collector that refuses
			// or does not answer): say so, not just "deadline exceeded".
			// Masked: a library caller's endpoint may carry a secret
			// (config refuses one, NewProvider does not).
			return fmt.Errorf("tracing: spans dropped on exit: the collector at %s did not take them in time: %w", redact.URL(cfg.OTLPEndpoint), err)
		}
		return fmt.Errorf("tracing: shutdown: %w", err)
	}, nil
}

// stdoutExporter is stdouttrace's exporter writing through a writer that
// never fails it: its json.Encoder keeps the first write error and
// returns it for every span after, so one failed write to the log output
// (a full disk, a pipe gone for a moment) ended the spans for good. The
// writes that failed are the export's error instead, which logErrors
// counts and logs (or, without a logger, OpenTelemetry's handler gets).
type stdoutExporter struct {
	*stdouttrace.Exporter
	mu sync.Mutex // one export at a time, so each reports its own writes
	w  *forgivingWriter
}

func newStdoutExporter(w io.Writer) (*stdoutExporter, error) {
	fw := &forgivingWriter{w: w}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(fw))
	if err != nil {
		return nil, err
	}
	return &stdoutExporter{Exporter: exp, w: fw}, nil
}

func (e *stdoutExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	err := e.Exporter.ExportSpans(ctx, spans)
	if e.w.failed > 0 { // one write per span: json.Encoder writes each value whole
		err = errors.Join(err, fmt.Errorf("tracing: %d of %d spans not written to stdout: %w", e.w.failed, len(spans), e.w.err))
		e.w.failed, e.w.err = 0, nil
	}
	return err
}

// forgivingWriter records a failed write and reports success to the
// encoder. Only stdoutExporter.ExportSpans writes, under its mu.
type forgivingWriter struct {
	w      io.Writer
	failed int
	err    error // the last failed write's
}

func (f *forgivingWriter) Write(p []byte) (int, error) {
	if _, err := f.w.Write(p); err != nil {
		f.failed++
		f.err = err
	}
	return len(p), nil
}

// logErrors returns exp reporting its export failures to logger instead
// of returning them to the span processor, which would hand them to
// OpenTelemetry's global error handler. With a nil logger it returns exp.
func logErrors(exp sdktrace.SpanExporter, name string, logger log.Logger) sdktrace.SpanExporter {
	if logger == nil {
		return exp
	}
	return &loggedExporter{SpanExporter: exp, name: name, logger: logger, now: time.Now}
}

type loggedExporter struct {
	sdktrace.SpanExporter
	name   string
	logger log.Logger
	now    func() time.Time

	mu       sync.Mutex
	last     time.Time // of the last line
	failures int       // not logged yet
	dropped  int
	lastErr  error
}

// ExportSpans exports spans and logs a line when failures are pending and
// the last line is ExportErrorEvery old, on a failure and on a success
// alike: the failures after an outage's first line are logged once
// exports work again, not held for the next outage's first line, which
// counted them as its own, or lost at exit (Shutdown logs them).
func (e *loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.mu.Lock()
	if err != nil {
		e.failures++
		e.dropped += len(spans)
		e.lastErr = err
	}
	now := e.now()
	if e.failures == 0 || !e.last.IsZero() && now.Sub(e.last) < ExportErrorEvery {
		e.mu.Unlock()
		return nil
	}
	e.last = now
	e.flushLocked()
	return nil
}

// Shutdown logs the failures not logged yet, then shuts the exporter down.
func (e *loggedExporter) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.failures > 0 {
		e.flushLocked()
	} else {
		e.mu.Unlock()
	}
	return e.SpanExporter.Shutdown(ctx)
}

// flushLocked logs the pending failures and unlocks e.mu.
func (e *loggedExporter) flushLocked() {
	failures, dropped, err := e.failures, e.dropped, e.lastErr
	e.failures, e.dropped, e.lastErr = 0, 0, nil
	e.mu.Unlock()
	level.Warn(e.logger).Log("msg", "trace export failed; spans dropped", "exporter", e.name,
		"failures", failures, "spans", dropped, "err", err)
}

// statusWriter records the status a handler wrote, for the span of a
// handler that panics (otelhttp's record of it is not reachable).
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) { // not 103
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streaming handlers working.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if w.code == 0 {
			w.code = http.StatusOK
		}
		f.Flush()
	}
}

// Hijack keeps connection-upgrading handlers working.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("tracing: response writer does not support hijacking")
}
