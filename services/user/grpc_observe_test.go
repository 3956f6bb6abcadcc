package user

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/metrics"
)

// The generated gRPC client observes each method as the HTTP one does
// (MakeGRPCClientEndpoints names every endpoint, grpcclient.Named): one
// span "user.Method" per call, and the per-method series of the metrics
// observer bootstrap gives every client, under the Go method's name, so
// switching a caller to gRPC keeps its series.
func TestGRPC_GeneratedClientHasPerMethodSpansAndSeries(t *testing.T) {
	startGRPCApp(t, regs.Open(t, "etcd"), "user-grpc-observed", NewMemoryStore())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prom := prometheus.NewRegistry()
	users, err := NewGRPCClient(ctx, regs.Open(t, "etcd"), client.WithObserver(metrics.NewClient(prom)), client.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	u, err := users.Create(ctx, CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Get(ctx, GetRequest{ID: u.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Get(ctx, GetRequest{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) = %v; want ErrNotFound", err)
	}
	if _, err := users.List(ctx, ListRequest{Limit: 5}); err != nil {
		t.Fatal(err)
	}

	calls, failures := map[string]uint64{}, map[string]float64{}
	families, err := prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch f.GetName() {
			case "warren_client_method_duration_seconds":
				calls[l["service"]+"."+l["method"]] = m.GetHistogram().GetSampleCount()
			case "warren_client_method_errors_total":
				failures[l["service"]+"."+l["method"]+" "+l["code"]] = m.GetCounter().GetValue()
			}
		}
	}
	if calls["user.Create"] != 1 || calls["user.Get"] != 2 || calls["user.List"] != 1 || len(calls) != 3 {
		t.Errorf("method_duration_seconds counts = %v; want user.Create 1, user.Get 2, user.List 1", calls)
	}
	if failures["user.Get user_not_found"] != 1 || len(failures) != 1 {
		t.Errorf("method_errors_total = %v; want user.Get user_not_found 1", failures)
	}
	spans := map[string]int{}
	for _, s := range rec.Ended() {
		spans[s.Name()]++
	}
	if spans["user.Create"] != 1 || spans["user.Get"] != 2 || spans["user.List"] != 1 {
		t.Errorf("client spans by name = %v; want user.Create 1, user.Get 2, user.List 1", spans)
	}
}
