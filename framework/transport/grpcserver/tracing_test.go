package grpcserver_test

import (
	"context"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/tracing"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// Health checks and the self-check get no span, as HTTP's probes get
// none; a service call on the same server does.
func TestTracing_HealthAndSelfCheckMakeNoSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	// WaitForHandlers: the graceful stop below returns after every
	// handler, and so every span, has ended.
	r := serve(t, "n1", grpcserver.WithTracing(tp, tracing.Propagator()), grpcserver.WithServerOptions(grpc.WaitForHandlers(true)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Probe(ctx, r.ep); err != nil {
		t.Fatal(err)
	}
	cc := dial(t, r.ep)
	for _, svc := range []string{"", grpcserver.LivenessService} {
		if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc}); err != nil {
			t.Fatalf("Check(%q): %v", svc, err)
		}
	}
	if _, err := grpctest.Say(ctx, cc, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := r.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
	}
	if len(names) != 1 || names[0] != "warren.test.v1.Echo/Say" {
		t.Fatalf("spans %q, want only the service call's warren.test.v1.Echo/Say", names)
	}
}

func TestWithTracing_RefusesNil(t *testing.T) {
	if _, err := grpcserver.New(func(*grpc.Server) {}, grpcserver.WithTracing(nil, tracing.Propagator())); err == nil {
		t.Error("WithTracing(nil provider) accepted")
	}
}
