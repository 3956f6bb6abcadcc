package grpcclient_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
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

// A call of an endpoint made with Named is one span "service.Method" and
// one per-method outcome, as client.Method makes an HTTP call; an
// endpoint without it is neither.
func TestNamed_SpanAndOutcomePerMethod(t *testing.T) {
	s := startEcho(t, "a")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	obs := &methodLog{}
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{s.instance("a")}, "echo",
		grpcclient.WithClientOptions(client.WithObserver(obs), client.WithTracerProvider(tp)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	named, unnamed := say(c, grpcclient.Named("Say")), say(c)
	if _, err := named(ctx30(t), "hi"); err != nil {
		t.Fatal(err)
	}
	if _, err := named(ctx30(t), "fail:not_found:echo_not_found"); err == nil {
		t.Fatal("the failing call succeeded")
	}
	if _, err := unnamed(ctx30(t), "hi"); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	got := slices.Clone(obs.calls)
	obs.mu.Unlock()
	if want := []string{"echo.Say ok", "echo.Say echo_not_found"}; !slices.Equal(got, want) {
		t.Fatalf("per-method outcomes = %q, want %q", got, want)
	}
	n := 0
	for _, sp := range rec.Ended() {
		if sp.Name() == "echo.Say" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d spans named echo.Say, want 2", n)
	}
}
