package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/retry"
)

// A retry whose only instance in rotation is the one it avoids — a stall
// had the other ejected, and this one hangs as a process dying under load
// does (the kernel accepts, nothing answers, nothing has failed yet, so
// the panic threshold has not been asked) — probes the ejected instance
// at once instead of going back (report j60a F8: every attempt and hedge
// went to the dying instance, failed together when it died, and their
// retries emptied the budget: 31 of 1078 calls failed). Two attempts:
// without the early probe both go to the hung instance and the call fails.
func TestCall_RetryWithEveryOtherInstanceEjectedProbesThemNotTheInstanceItAvoids(t *testing.T) {
	good, h := startBackend(t, "", nil), startHung(t)
	c := newClient(t, newRegistry(t, good.inst, h.inst),
		// 1 s: the hung attempt's timeout, and the bound of the good
		// probe's answer on a loaded machine.
		WithRetry(retry.WithMaxAttempts(2), retry.WithPerAttemptTimeout(time.Second), retry.WithoutHedging()),
		WithOutlier(outlier.WithCooldown(time.Hour, time.Hour)))
	var goodT *balancer.Target
	for range 500 { // discovery's first set: memory registry, at once
		for _, t := range c.Targets() {
			if t.Instance().ID == good.inst.ID {
				goodT = t
			}
		}
		if goodT != nil && len(c.Targets()) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if goodT == nil || len(c.Targets()) != 2 {
		t.Fatalf("discovery: %d targets, want 2", len(c.Targets()))
	}
	for range 5 { // outlier.WithConsecutiveFailures' default: a stall's outpaced attempts
		goodT.Breaker().RecordError(outlier.Outpaced, errors.New("outpaced in a stall"))
	}
	if !goodT.Ejected() {
		t.Fatal("setup: the good instance is not ejected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	if _, err := Call[echoReq, echoResp](ctx, c, "GET", "/", echoReq{N: 1}); err != nil {
		t.Fatalf("call failed; want its retry to probe the ejected instance and succeed: %v", err)
	}
	if n := good.hits.Load(); n != 1 {
		t.Errorf("the ejected instance served %d requests; want 1 (the probe)", n)
	}
	if s := goodT.Breaker().State(); s != outlier.Closed {
		t.Errorf("the ejected instance's breaker is %s after a good probe; want closed", s)
	}
}
