package grpcclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/tracing"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

const (
	callSpan    = "echo.Say"
	attemptSpan = "call warren.test.v1.Echo/Say"
	serverSpan  = "warren.test.v1.Echo/Say"
)

// recorder is one process's tracer provider and the spans it ended.
func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return tp, rec
}

// waitSpans waits until rec has ended n spans named name (a server span
// ends after its answer left, maybe after the caller has it) and returns
// them.
func waitSpans(t *testing.T, rec *tracetest.SpanRecorder, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got, all []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			all = append(all, s)
			if s.Name() == name {
				got = append(got, s)
			}
		}
		if len(got) >= n || time.Now().After(deadline) {
			if len(got) != n {
				var names []string
				for _, s := range all {
					names = append(names, s.SpanKind().String()+" "+s.Name())
				}
				t.Fatalf("%d spans %q ended, want %d; all: %q", len(got), name, n, names)
			}
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tracedClient is a client of the instances in src traced as bootstrap
// traces one: call spans and attempt spans from tp, W3C propagation.
func tracedClient(t *testing.T, src sd.Instancer, tp trace.TracerProvider, copts ...client.Option) *grpcclient.Client {
	t.Helper()
	c, err := grpcclient.NewFromInstancer(src, "echo", grpcclient.WithClientOptions(
		append([]client.Option{client.WithTracerProvider(tp), client.WithPropagator(tracing.Propagator())}, copts...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Caller and server as two processes (two providers): a named call is
// one trace, call span → attempt span → the server's span, the server's
// parent remote (traceparent crossed in the metadata).
func TestTracing_CallAttemptAndServerSpansAreOneTrace(t *testing.T) {
	serverTP, serverRec := recorder(t)
	clientTP, clientRec := recorder(t)
	s := startEcho(t, "a", grpcserver.WithTracing(serverTP, tracing.Propagator()))
	c := tracedClient(t, sd.FixedInstancer{s.instance("a")}, clientTP)
	if _, err := say(c, grpcclient.Named("Say"))(ctx30(t), "hi"); err != nil {
		t.Fatal(err)
	}

	call := waitSpans(t, clientRec, callSpan, 1)[0]
	attempt := waitSpans(t, clientRec, attemptSpan, 1)[0]
	server := waitSpans(t, serverRec, serverSpan, 1)[0]
	tid := call.SpanContext().TraceID()
	switch {
	case call.Parent().IsValid():
		t.Errorf("call span has parent %s; the call started the trace", call.Parent().SpanID())
	case attempt.Parent().SpanID() != call.SpanContext().SpanID() || attempt.SpanKind() != trace.SpanKindClient:
		t.Errorf("attempt span (%s) has parent %s, want the call span %s", attempt.SpanKind(), attempt.Parent().SpanID(), call.SpanContext().SpanID())
	case server.SpanContext().TraceID() != tid:
		t.Errorf("server span in trace %s, want the caller's %s", server.SpanContext().TraceID(), tid)
	case server.Parent().SpanID() != attempt.SpanContext().SpanID() || !server.Parent().IsRemote():
		t.Errorf("server span has parent %s (remote %v), want the attempt span %s, remote",
			server.Parent().SpanID(), server.Parent().IsRemote(), attempt.SpanContext().SpanID())
	case server.SpanKind() != trace.SpanKindServer:
		t.Errorf("server span kind %s", server.SpanKind())
	}
	if got := attr(server, "rpc.response.status_code"); got != "OK" {
		t.Errorf("server span rpc.response.status_code = %q, want OK", got)
	}
	if got := attr(attempt, "server.address"); got != "127.0.0.1" {
		t.Errorf("attempt span server.address = %q, want the instance's 127.0.0.1", got)
	}
}

// A call retried after the first instance refused it (nothing listens on
// its port: UNAVAILABLE, not sent) has two attempt spans under its call
// span, the first failed; only the second reached a server.
func TestTracing_RetriedCallHasASpanPerAttempt(t *testing.T) {
	serverTP, serverRec := recorder(t)
	clientTP, clientRec := recorder(t)
	dead := startEcho(t, "a")
	dead.Close()
	live := startEcho(t, "b", grpcserver.WithTracing(serverTP, tracing.Propagator()))
	c := tracedClient(t, sd.FixedInstancer{dead.instance("a"), live.instance("b")}, clientTP,
		client.WithBalancer(newFirstPick()), client.WithoutOutlier()) // a first, then b
	if got, err := say(c, grpcclient.Named("Say"))(ctx30(t), "id"); err != nil || got != "b" {
		t.Fatalf("call = %q, %v; want b's answer after a refused", got, err)
	}

	call := waitSpans(t, clientRec, callSpan, 1)[0]
	attempts := waitSpans(t, clientRec, attemptSpan, 2)
	server := waitSpans(t, serverRec, serverSpan, 1)[0]
	var failed, ok []sdktrace.ReadOnlySpan
	for _, a := range attempts {
		if a.Parent().SpanID() != call.SpanContext().SpanID() {
			t.Errorf("attempt span has parent %s, want the call span %s", a.Parent().SpanID(), call.SpanContext().SpanID())
		}
		if a.Status().Code == codes.Error {
			failed = append(failed, a)
		} else {
			ok = append(ok, a)
		}
	}
	if len(failed) != 1 || len(ok) != 1 {
		t.Fatalf("%d failed and %d good attempt spans, want one each", len(failed), len(ok))
	}
	if got := attr(failed[0], "rpc.response.status_code"); got != "UNAVAILABLE" {
		t.Errorf("failed attempt's rpc.response.status_code = %q, want UNAVAILABLE", got)
	}
	if server.Parent().SpanID() != ok[0].SpanContext().SpanID() {
		t.Errorf("server span has parent %s, want the second attempt %s", server.Parent().SpanID(), ok[0].SpanContext().SpanID())
	}
}

// With no-op providers on both sides (bootstrap's without an exporter)
// there are no spans, but the caller's trace context still crosses the
// call and reaches the service's handlers, so its own calls continue it.
func TestTracing_NoopProvidersStillPassTheTraceOn(t *testing.T) {
	seen := make(chan trace.SpanContext, 1)
	capture := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		select {
		case seen <- trace.SpanContextFromContext(ctx):
		default:
		}
		return h(ctx, req)
	}
	s := startEcho(t, "a", grpcserver.WithTracing(noop.NewTracerProvider(), tracing.Propagator()), grpcserver.WithUnaryInterceptors(capture))
	c := tracedClient(t, sd.FixedInstancer{s.instance("a")}, noop.NewTracerProvider())
	callerTP, _ := recorder(t) // the trace the caller is in, from elsewhere
	ctx, span := callerTP.Tracer("test").Start(ctx30(t), "caller")
	defer span.End()
	if _, err := say(c)(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	got := <-seen
	if want := span.SpanContext(); got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() || !got.IsRemote() {
		t.Fatalf("the handler's span context = %v %v (remote %v), want the caller's %v %v, remote",
			got.TraceID(), got.SpanID(), got.IsRemote(), want.TraceID(), want.SpanID())
	}
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.Emit()
		}
	}
	return ""
}
