package client

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/retry"
)

// attemptCounter counts the retries and hedges a client reports.
type attemptCounter struct {
	NopObserver
	retries, hedges atomic.Int64
}

func (a *attemptCounter) Retried(string) { a.retries.Add(1) }
func (a *attemptCounter) Hedged(string)  { a.hedges.Add(1) }

// A hedge is not a retry (report j57b F9: a healthy mesh read "retries
// 1–2 %"): a GET whose attempt on a slow instance is hedged and answered
// by the other instance counts hedges and no retry.
func TestCall_HedgeIsCountedAsAHedgeNotARetry(t *testing.T) {
	slow, fast := startBackend(t, "", nil), startBackend(t, "", nil)
	obs := &attemptCounter{}
	c := newClient(t, newRegistry(t, slow.inst, fast.inst), WithBalancer(balancer.NewRoundRobin()), WithObserver(obs),
		WithRetry(retry.WithPerAttemptTimeout(time.Hour)))
	// Enough answers for the policy to know its p99 (no hedge before).
	if errs, _ := load(1, 60, time.Minute, get(c)); len(errs) > 0 {
		t.Fatalf("warm-up: %d errors, first %v", len(errs), errs[0])
	}
	waitRefresh()
	obs.retries.Store(0)
	obs.hedges.Store(0)
	slow.delay.Store(int64(time.Hour)) // answers nothing until its attempt is cancelled
	before := slow.hits.Load()
	for i := range 4 { // round robin: two of them meet the slow instance
		if err := get(c)(i); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
	}
	met := slow.hits.Load() - before
	if met < 1 {
		t.Fatal("no call met the slow instance")
	}
	if r, h := obs.retries.Load(), obs.hedges.Load(); r != 0 || h != met {
		t.Fatalf("%d retries, %d hedges for %d calls hedged around the slow instance; want 0 retries, %d hedges", r, h, met, met)
	}
}

// A retry after a failure is a retry, not a hedge: a GET answered 503 by
// one instance and retried on the other counts one retry.
func TestCall_RetryAfterA503IsCountedAsARetryNotAHedge(t *testing.T) {
	bad, good := startBackend(t, "", nil), startBackend(t, "", nil)
	bad.mode.Store(mode503)
	obs := &attemptCounter{}
	c := newClient(t, newRegistry(t, bad.inst, good.inst), WithBalancer(balancer.NewRoundRobin()), WithObserver(obs),
		WithRetry(retry.WithBackoff(time.Microsecond, time.Microsecond), retry.WithBudget(nil)))
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	for i := 0; bad.hits.Load() == 0; i++ { // until a call meets the 503 (round robin: the first or second)
		if i == 4 {
			t.Fatal("4 calls and none met the 503 instance")
		}
		if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{N: i}); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
	}
	if r, h := obs.retries.Load(), obs.hedges.Load(); r != 1 || h != 0 {
		t.Fatalf("%d retries, %d hedges after one 503; want 1 retry, 0 hedges", r, h)
	}
}
