package grpcclient_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// Rounds of hedgeStage: how the two attempts of one hedged call are
// answered, the first to arrive being the call's first attempt and the
// second its hedge.
const (
	fast      int32 = iota // every call answered at once (warm-up)
	firstWins              // the first answers once the hedge has arrived; the hedge is held until cancelled
	hedgeWins              // the first is held until cancelled; the hedge answers at once
	holdAll                // every call is held until cancelled
)

// hedgeStage is a unary interceptor shared by both instances: it stages
// one hedged call per round by arrival order, so which instance gets
// which attempt does not matter.
type hedgeStage struct {
	mode    atomic.Int32
	mu      sync.Mutex
	n       int           // arrivals this round
	hedgeIn chan struct{} // closed when the hedge arrived (firstWins)
}

func (s *hedgeStage) round(mode int32) {
	s.mu.Lock()
	s.n, s.hedgeIn = 0, make(chan struct{})
	s.mu.Unlock()
	s.mode.Store(mode)
}

func (s *hedgeStage) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	mode := s.mode.Load()
	s.mu.Lock()
	s.n++
	n, hedgeIn := s.n, s.hedgeIn
	s.mu.Unlock()
	held := func() (any, error) { // until the client gives the attempt up (bounded)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Second):
			return h(ctx, req)
		}
	}
	switch {
	case mode == firstWins && n == 1:
		select {
		case <-hedgeIn:
		case <-time.After(20 * time.Second): // no hedge sent: the test fails on its span count
		}
	case mode == firstWins && n == 2:
		close(hedgeIn)
		return held()
	case mode == hedgeWins && n == 1, mode == holdAll:
		return held()
	}
	return h(ctx, req)
}

// A hedged gRPC call against two real servers: the attempt called off
// because the other answered first (retry.ErrHedgeUnneeded) did not
// fail, so its span is not an Error (otelgrpc marks every non-OK status
// so, CANCELLED included, and error rates from spans counted each
// needless hedge as a failure) but says why it ended. A first attempt
// outpaced by its hedge (retry.ErrOutpaced: a slow instance) stays an
// Error, as do attempts ended by the caller's deadline.
func TestTracing_HedgeLoserIsNotAnErrorSpan(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	tp, rec := recorder(t)
	stage := &hedgeStage{}
	a := startEcho(t, "a", grpcserver.WithUnaryInterceptors(stage.intercept))
	b := startEcho(t, "b", grpcserver.WithUnaryInterceptors(stage.intercept))
	c := tracedClient(t, sd.FixedInstancer{a.instance("a"), b.instance("b")}, tp)
	sayHedged := say(c, grpcclient.Idempotent())

	// callWithin makes one call in a trace of its own and returns its
	// attempt spans: Do waits for a called-off attempt, and an attempt's
	// span ends (stats.End) before grpc-go's Invoke returns, so all of
	// them are in by now.
	callWithin := func(name string, d time.Duration) ([]sdktrace.ReadOnlySpan, error) {
		t.Helper()
		cctx, parent := tp.Tracer("test").Start(ctx, name)
		cctx, ccancel := context.WithTimeout(cctx, d)
		defer ccancel()
		_, err := sayHedged(cctx, "hi")
		parent.End()
		var got []sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == attemptSpan && s.SpanContext().TraceID() == parent.SpanContext().TraceID() {
				got = append(got, s)
			}
		}
		return got, err
	}
	pair := func(name string) (first, hedge sdktrace.ReadOnlySpan) {
		t.Helper()
		got, err := callWithin(name, 30*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != 2 {
			t.Fatalf("%s: %d attempt spans; want the attempt and its hedge (hedges sent: %d)", name, len(got), c.State().Hedges)
		}
		if got[1].StartTime().Before(got[0].StartTime()) {
			return got[1], got[0]
		}
		return got[0], got[1]
	}

	stage.round(fast) // enough answers for the policy to know its p99: no hedge before
	for i := range 40 {
		if _, err := callWithin(fmt.Sprint("warm-up ", i), 30*time.Second); err != nil {
			t.Fatalf("warm-up %d: %v", i, err)
		}
	}
	time.Sleep(100 * time.Millisecond) // the policy reads its p99 again every 50 ms

	stage.round(firstWins)
	first, hedge := pair("hedge called off")
	for _, s := range []sdktrace.ReadOnlySpan{first, hedge} {
		if s.Status().Code == codes.Error {
			t.Errorf("hedge called off: attempt span has status Error %q (%s); the call succeeded and no attempt failed",
				s.Status().Description, attr(s, "rpc.response.status_code"))
		}
	}
	if got := attr(hedge, "warren.attempt.outcome"); got != "hedge_unneeded" || hedge.Status().Code != codes.Ok {
		t.Errorf("called-off hedge: outcome %q, status %v; want hedge_unneeded and Ok", got, hedge.Status())
	}
	if got := attr(first, "warren.attempt.outcome"); got != "" {
		t.Errorf("winning first attempt: outcome %q; want none", got)
	}

	stage.round(hedgeWins)
	first, hedge = pair("first attempt outpaced")
	if first.Status().Code != codes.Error || attr(first, "warren.attempt.outcome") != "outpaced" {
		t.Errorf("outpaced first attempt: status %v, outcome %q; want Error and outpaced (its instance was slow)", first.Status(), attr(first, "warren.attempt.outcome"))
	}
	if hedge.Status().Code == codes.Error || attr(hedge, "warren.attempt.outcome") != "" {
		t.Errorf("winning hedge: status %v, outcome %q; want no Error and no outcome", hedge.Status(), attr(hedge, "warren.attempt.outcome"))
	}

	// The caller's deadline ends every attempt: each is a failure.
	stage.round(holdAll)
	got, err := callWithin("caller's deadline", 500*time.Millisecond)
	if err == nil || len(got) == 0 {
		t.Fatalf("held call: %v, %d attempt spans; want an error and its attempts", err, len(got))
	}
	for _, s := range got {
		if s.Status().Code != codes.Error || attr(s, "warren.attempt.outcome") != "" {
			t.Errorf("attempt ended by the caller's deadline: status %v, outcome %q; want Error and no outcome", s.Status(), attr(s, "warren.attempt.outcome"))
		}
	}
}
