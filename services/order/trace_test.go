package order

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/go-kit/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/servicetest"
	"github.com/warren-mesh/warren/framework/tracing"
	"github.com/warren-mesh/warren/services/user"
)

// TestTrace_StartedAtOrderContinuesInUser runs order and user as two apps,
// each with its own tracer provider and in-memory exporter as if they were
// two processes, sends one request to order without any trace context and
// checks that user's server span belongs to the trace order started, as a
// child of order's client span (W3C traceparent crossed the hop).
func TestTrace_StartedAtOrderContinuesInUser(t *testing.T) {
	reg := memory.New()
	ctx := context.Background()
	prop := tracing.Propagator()
	provider := func() (*sdktrace.TracerProvider, *tracetest.InMemoryExporter) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { tp.Shutdown(context.Background()) })
		return tp, exp
	}
	userTP, userSpans := provider()
	orderTP, orderSpans := provider()
	opts := []app.Option{app.WithListen("127.0.0.1:0"), app.WithGracePeriod(0), app.WithSignals(false), app.WithLogger(log.NewNopLogger())}

	users := user.New(user.NewMemoryStore())
	ua, err := app.New("user", user.NewHTTPHandler(user.MakeEndpoints(users), log.NewNopLogger()), sharedRegistry{reg},
		append(opts, app.WithHTTPMiddleware(tracing.Server(userTP, prop)))...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, ua)
	ada, err := users.Create(ctx, user.CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}

	uc, err := user.NewClient(ctx, reg, client.WithRoundTripper(tracing.Transport(orderTP, prop)))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	oa, err := app.New("order", NewHTTPHandler(MakeEndpoints(New(uc, NewMemoryStore())), log.NewNopLogger()), sharedRegistry{reg},
		append(opts, app.WithHTTPMiddleware(tracing.Server(orderTP, prop)))...)
	if err != nil {
		t.Fatal(err)
	}
	servicetest.Run(t, oa)

	body := `{"user_id":"` + ada.ID + `","items":[{"sku":"book","quantity":1,"price_cents":500}]}`
	resp, err := http.Post(oa.Instance().Endpoints[0]+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /orders: %s", resp.Status)
	}

	orderServer := findSpan(t, orderSpans, trace.SpanKindServer, "POST /orders")
	if orderServer.Parent.IsValid() {
		t.Fatalf("order's server span has a parent %s; the request carried no trace", orderServer.Parent.SpanID())
	}
	orderClient := findSpan(t, orderSpans, trace.SpanKindClient, "call GET")
	userServer := findSpan(t, userSpans, trace.SpanKindServer, "GET /users/{id}")
	traceID := orderServer.SpanContext.TraceID()
	switch {
	case orderClient.SpanContext.TraceID() != traceID:
		t.Errorf("order's client span is in trace %s, want %s", orderClient.SpanContext.TraceID(), traceID)
	case userServer.SpanContext.TraceID() != traceID:
		t.Errorf("user's server span is in trace %s, want order's %s", userServer.SpanContext.TraceID(), traceID)
	case userServer.Parent.SpanID() != orderClient.SpanContext.SpanID():
		t.Errorf("user's server span has parent %s, want order's client span %s", userServer.Parent.SpanID(), orderClient.SpanContext.SpanID())
	case !userServer.Parent.IsRemote():
		t.Error("user's parent span context is not marked remote")
	}
}

func findSpan(t *testing.T, exp *tracetest.InMemoryExporter, kind trace.SpanKind, name string) tracetest.SpanStub {
	t.Helper()
	var names []string
	for _, s := range exp.GetSpans() {
		if s.SpanKind == kind && s.Name == name {
			return s
		}
		names = append(names, s.SpanKind.String()+" "+s.Name)
	}
	t.Fatalf("no %s span %q; have %q", kind, name, names)
	return tracetest.SpanStub{}
}
