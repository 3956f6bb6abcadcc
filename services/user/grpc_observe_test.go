package user

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/client"
)

// methodLog is a client.MethodObserver that records every finished call.
type methodLog struct {
	client.NopObserver
	mu    sync.Mutex
	calls []string // service.Method code
}

func (m *methodLog) MethodDone(service, method, code string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, service+"."+method+" "+code)
}

// The generated gRPC client observes each method as the HTTP one does
// (MakeGRPCClientEndpoints names every endpoint, grpcclient.Named): one
// span "user.Method" per call and one per-method outcome, under the Go
// method's name, so switching a caller to gRPC keeps its series.
func TestGRPC_GeneratedClientHasPerMethodSpansAndSeries(t *testing.T) {
	startGRPCApp(t, regs.Open(t, "etcd"), "user-grpc-observed", NewMemoryStore())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	obs := &methodLog{}
	users, err := NewGRPCClient(ctx, regs.Open(t, "etcd"), client.WithObserver(obs), client.WithTracerProvider(tp))
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

	obs.mu.Lock()
	got := slices.Clone(obs.calls)
	obs.mu.Unlock()
	if want := []string{"user.Create ok", "user.Get ok", "user.Get user_not_found", "user.List ok"}; !slices.Equal(got, want) {
		t.Fatalf("per-method outcomes = %q, want %q", got, want)
	}
	spans := map[string]int{}
	for _, s := range rec.Ended() {
		spans[s.Name()]++
	}
	if spans["user.Create"] != 1 || spans["user.Get"] != 2 || spans["user.List"] != 1 {
		t.Fatalf("client spans by name = %v; want user.Create 1, user.Get 2, user.List 1", spans)
	}
}
