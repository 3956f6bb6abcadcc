package shed

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/internal/downstream"
)

// runWindowWaiting is runWindow whose requests each wait down on a call
// to another service (marked as Warren's clients mark it) and then work
// own themselves.
func runWindowWaiting(t *testing.T, l *Limiter, clk *fakeClock, own, down time.Duration) {
	t.Helper()
	var toks []Token
	var ends []func()
	for {
		tok, why := l.Acquire()
		if why != Admitted {
			break
		}
		ends = append(ends, downstream.Begin(tok.watch(context.Background())))
		toks = append(toks, tok)
	}
	clk.Add(down)
	for _, end := range ends {
		end()
	}
	clk.Add(own)
	for _, tok := range toks {
		tok.Release()
	}
}

// Report j50a 1: order's requests waited on hung users, its in-flight
// limit read that as order being full and fell 200 → 21, and order
// refused a fifth of its own callers. Time spent waiting on another
// service is left out of the latency signal: the limit holds (it grows).
func TestLimiter_WaitOnAnotherServiceDoesNotCutTheLimit(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithLimits(50, 5, 500), WithWindow(time.Millisecond, 1))
	for range 30 {
		runWindowWaiting(t, l, clk, 2*time.Millisecond, 0)
	}
	steady := l.Stats().Limit
	for range 30 { // the dependency hangs: each request waits 2 s on it
		runWindowWaiting(t, l, clk, 2*time.Millisecond, 2*time.Second)
	}
	if n := l.Stats().Limit; n < steady {
		t.Fatalf("limit %d after requests waited 2 s on another service, want at least the steady %d", n, steady)
	}
	// The same requests with their 2 s spent in the instance itself do
	// cut it: the signal is still there for the instance's own slowness.
	for range 30 {
		runWindowWaiting(t, l, clk, 2*time.Second, 0)
	}
	if n := l.Stats().Limit; n > steady/2 {
		t.Fatalf("limit %d after requests took 2 s in the instance, want at most half of %d", n, steady)
	}
}

// Both middlewares give the handler's context the record its client calls
// mark: a request that waited 1 s on another service and worked 2 ms
// records 2 ms.
func TestMiddlewares_LeaveTheWaitOnAnotherServiceOutOfTheSample(t *testing.T) {
	handle := func(ctx context.Context, clk *fakeClock) {
		end := downstream.Begin(ctx)
		clk.Add(time.Second)
		end()
		clk.Add(2 * time.Millisecond)
	}
	check := func(name string, l *Limiter) {
		t.Helper()
		if sum, n := l.winSum.Load(), l.winCount.Load(); n != 1 || time.Duration(sum) != 2*time.Millisecond {
			t.Fatalf("%s: %d samples summing %v, want 1 of 2ms", name, n, time.Duration(sum))
		}
	}
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithWindow(time.Hour, 1000))
	mw, err := Middleware(l)
	if err != nil {
		t.Fatal(err)
	}
	mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(r.Context(), clk) })).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	check("http", l)

	clk = newFakeClock()
	l = mustNew(t, WithQueueProbe(nil), WithClock(clk.Now), WithWindow(time.Hour, 1000))
	ic, err := UnaryServerInterceptor(l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x.X/Y"}, func(ctx context.Context, _ any) (any, error) {
		handle(ctx, clk)
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	check("grpc", l)
}
