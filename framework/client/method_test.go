package client

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// methodLog is a MethodObserver that records every finished call.
type methodLog struct {
	NopObserver
	mu    sync.Mutex
	calls []string // service.method code
}

func (m *methodLog) MethodDone(service, method, code string, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, service+"."+method+" "+code)
}

// TestMethod_SpanNamedServiceMethodAndOutcomePerMethod: a call named with
// Method is one span "service.Method" and one MethodDone with its outcome
// code; an unnamed call is neither.
func TestMethod_SpanNamedServiceMethodAndOutcomePerMethod(t *testing.T) {
	b := startStatusBackend(t, http.StatusOK)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	obs := &methodLog{}
	c := newClient(t, newRegistry(t, b.inst), WithTracerProvider(tp), WithObserver(obs))
	ctx := context.Background()
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}, Method("Get")); err != nil {
		t.Fatal(err)
	}
	b.status.Store(http.StatusNotFound)
	Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}, Method("Get"))
	Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}) // not named: not observed

	obs.mu.Lock()
	got := append([]string(nil), obs.calls...)
	obs.mu.Unlock()
	if want := []string{"echo.Get ok", "echo.Get c404"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("MethodDone calls = %q, want %q", got, want)
	}
	spans := rec.Ended()
	n := 0
	for _, s := range spans {
		if s.Name() == "echo.Get" {
			n++
		}
	}
	if n != 2 {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans %q: want two named echo.Get", names)
	}
}

func TestOutcomeCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{&Error{Status: 404, Code: "user_not_found"}, "user_not_found"},
		{&Error{Status: 502}, "502"},
		{context.DeadlineExceeded, "deadline_exceeded"},
		{context.Canceled, "canceled"},
		{http.ErrServerClosed, "unavailable"},
	} {
		if got := OutcomeCode(c.err); got != c.want {
			t.Errorf("OutcomeCode(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// A failed named call's debug line carries the caller's request ID and
// the trace ID, so an error line, its access line and its trace can be
// joined (report j47c: it had the trace ID only).
func TestMethod_FailedCallLineCarriesRequestAndTraceIDs(t *testing.T) {
	b := startStatusBackend(t, http.StatusNotFound)
	tp := sdktrace.NewTracerProvider()
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	logs := &syncbuf.Buffer{}
	c := newClient(t, newRegistry(t, b.inst), WithTracerProvider(tp), WithLogger(log.NewLogfmtLogger(logs)))
	ctx, span := tp.Tracer("test").Start(requestid.NewContext(context.Background(), "req-42"), "caller")
	defer span.End()
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/x", echoReq{}, Method("Get")); err == nil {
		t.Fatal("a 404 call succeeded")
	}
	want := `msg="call failed" service=echo method=Get code=c404`
	if l := logs.String(); !strings.Contains(l, want) || !strings.Contains(l, "request_id=req-42") ||
		!strings.Contains(l, "trace_id="+span.SpanContext().TraceID().String()) {
		t.Fatalf("log lacks the failed call with its request and trace IDs:\n%s", l)
	}
}
