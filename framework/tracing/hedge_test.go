package tracing

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// Rounds of hedgeStage: how the two attempts of one hedged call are
// answered, the first request to arrive being the call's first attempt
// and the second its hedge.
const (
	fast         int32 = iota // every request answered at once (warm-up)
	firstWins                 // the first answers once the hedge has arrived; the hedge waits for headers until cancelled
	firstWinsMid              // the same, but the hedge has its headers and half its body when the first answers
	hedgeWins                 // the first is held until cancelled; the hedge answers at once
	holdAll                   // every request is held until cancelled
)

// hedgeStage is the handler of both instances: it stages one hedged
// call per round, deciding by arrival order, so which instance gets which
// attempt does not matter.
type hedgeStage struct {
	mode    atomic.Int32
	mu      sync.Mutex
	n       int           // arrivals this round
	hedgeIn chan struct{} // closed when the hedge arrived (firstWins)
	midBody chan struct{} // closed by the client side when the hedge's headers are in (firstWinsMid)
}

func (s *hedgeStage) round(mode int32) {
	s.mu.Lock()
	s.n, s.hedgeIn, s.midBody = 0, make(chan struct{}), make(chan struct{})
	s.mu.Unlock()
	s.mode.Store(mode)
}

func (s *hedgeStage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode := s.mode.Load()
	s.mu.Lock()
	s.n++
	n, hedgeIn, midBody := s.n, s.hedgeIn, s.midBody
	s.mu.Unlock()
	answer := func() {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}
	held := func() { // until the client gives the attempt up (bounded)
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}
	wait := func(ch chan struct{}) {
		select {
		case <-ch:
		case <-time.After(20 * time.Second): // no hedge sent: the test fails on its span count
		}
	}
	switch {
	case mode == fast:
		answer()
	case mode == firstWins && n == 1:
		wait(hedgeIn)
		answer()
	case mode == firstWins && n == 2:
		close(hedgeIn)
		held()
	case mode == firstWinsMid && n == 1:
		wait(midBody)
		answer()
	case mode == firstWinsMid && n == 2:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "100")
		w.Header().Set("X-Held-Mid-Body", "1")
		_, _ = w.Write([]byte(`{"ok":`))
		w.(http.Flusher).Flush()
		held()
	case mode == hedgeWins && n == 1, mode == holdAll:
		held()
	default:
		answer()
	}
}

func startInstance(t *testing.T, h http.Handler, i int) registry.Instance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }() // ends with Close at cleanup
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	return registry.Instance{ID: fmt.Sprintf("echo-%d", i), Name: "echo", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

// signalHeaders is a RoundTripper outside Transport that closes the
// stage's midBody channel once a held hedge's headers have reached the
// client, so the first attempt answers while the hedge reads its body.
func signalHeaders(s *hedgeStage) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			resp, err := next.RoundTrip(r)
			if err == nil && resp.Header.Get("X-Held-Mid-Body") != "" {
				s.mu.Lock()
				close(s.midBody)
				s.mu.Unlock()
			}
			return resp, err
		})
	}
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.Emit()
		}
	}
	return ""
}

// A hedged call through framework/client against real servers: the
// attempt that was called off because the other answered first
// (retry.ErrHedgeUnneeded) did not fail, so its span is not an Error
// (error rates from spans counted every needless hedge as a failure) but
// says why it ended, whether it was cancelled waiting for its answer's
// headers or while reading its body. The first attempt outpaced by its
// hedge (retry.ErrOutpaced: a slow instance) stays an Error.
func TestTransport_HedgeLoserIsNotAnErrorSpan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())

	stage := &hedgeStage{}
	reg := memory.New()
	defer reg.Close()
	for i := range 2 {
		if err := reg.Register(ctx, startInstance(t, stage, i)); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(ctx, reg, "echo",
		client.WithRoundTripper(Transport(tp, Propagator())), client.WithRoundTripper(signalHeaders(stage)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	callWithin := func(name string, d time.Duration) ([]sdktrace.ReadOnlySpan, error) {
		t.Helper()
		cctx, parent := tp.Tracer("test").Start(ctx, name)
		cctx, ccancel := context.WithTimeout(cctx, d)
		defer ccancel()
		_, err := client.Call[struct{}, struct{ OK bool }](cctx, c, "GET", "/x", struct{}{})
		parent.End()
		// Do waits for a called-off hedge, and an attempt's span ends
		// before its attempt returns: all of them are in by now.
		var got []sdktrace.ReadOnlySpan
		for _, s := range spans.Ended() {
			if s.Parent().SpanID() == parent.SpanContext().SpanID() {
				got = append(got, s)
			}
		}
		return got, err
	}
	call := func(name string) []sdktrace.ReadOnlySpan {
		t.Helper()
		got, err := callWithin(name, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return got
	}

	stage.round(fast) // enough answers for the policy to know its p99: no hedge before
	for i := range 40 {
		call(fmt.Sprint("warm-up ", i))
	}
	time.Sleep(100 * time.Millisecond) // the policy reads its p99 again every 50 ms
	for _, tc := range []struct {
		mode int32
		name string
	}{{firstWins, "hedge called off waiting for its answer"}, {firstWinsMid, "hedge called off reading its body"}} {
		stage.round(tc.mode)
		got := call(tc.name)
		if len(got) != 2 {
			t.Fatalf("%s: %d attempt spans; want the attempt and its hedge (hedges sent: %d)", tc.name, len(got), c.State().Hedges)
		}
		for _, s := range got {
			if s.Status().Code == codes.Error {
				t.Errorf("%s: attempt span %q has status Error %q; the call succeeded and no attempt failed", tc.name, s.Name(), s.Status().Description)
			}
		}
		if a, b := attr(got[0], "warren.attempt.outcome"), attr(got[1], "warren.attempt.outcome"); a+b != "hedge_unneeded" {
			t.Errorf("%s: warren.attempt.outcome %q and %q; want hedge_unneeded on the hedge only", tc.name, a, b)
		}
	}

	stage.round(hedgeWins)
	got, err := callWithin("first attempt outpaced", 30*time.Second)
	if err != nil {
		t.Fatalf("outpaced: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("outpaced: %d attempt spans; want 2", len(got))
	}
	first := got[0]
	if got[1].StartTime().Before(first.StartTime()) {
		first = got[1]
	}
	if first.Status().Code != codes.Error || attr(first, "warren.attempt.outcome") != "outpaced" {
		t.Errorf("outpaced first attempt: status %v, outcome %q; want Error and outpaced (its instance was slow)", first.Status(), attr(first, "warren.attempt.outcome"))
	}

	// The caller's deadline ends every attempt: each is a failure.
	stage.round(holdAll)
	got, err = callWithin("caller's deadline", 500*time.Millisecond)
	if err == nil || len(got) == 0 {
		t.Fatalf("held call: %v, %d attempt spans; want an error and its attempts", err, len(got))
	}
	for _, s := range got {
		if s.Status().Code != codes.Error || attr(s, "warren.attempt.outcome") != "" {
			t.Errorf("attempt ended by the caller's deadline: status %v, outcome %q; want Error and no outcome", s.Status(), attr(s, "warren.attempt.outcome"))
		}
	}
}
