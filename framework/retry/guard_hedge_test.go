package retry

import (
	"context"
	"errors"
	"testing"
	"time"
)

// docs/client.md, Hedging: "a first attempt that fails with an answer (a
// 404, say) decides the call". TestDo_FirstAttemptsAnswerDecidesAHedgedCall
// passes too when Do waits the hedge out (it only checks errors.Is, which
// the joined error still satisfies); here the hedge would succeed after
// 5 s, so a Do that waits for it returns success instead of the answer.
// The hedge must be called off as unneeded, and the call's error must be
// the answer alone, not a retry.Error of two attempts.
func TestGuard_FirstAttemptsAnswerDecidesAHedgedCallAndCallsOffTheHedge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &fakeClock{t: time.Unix(1000, 0)}
	p := hedgingPolicy(c)
	hedgeStarted := make(chan struct{})
	var hedgeCause error
	notFound := classed{Fatal}
	err := p.Do(ctx, true, func(ctx context.Context, n int) error {
		if n == 1 {
			select {
			case <-hedgeStarted:
			case <-ctx.Done():
				return ctx.Err()
			}
			return notFound
		}
		close(hedgeStarted)
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-ctx.Done():
			hedgeCause = context.Cause(ctx)
			return ctx.Err()
		case <-t.C:
			return nil // a hedge left to run would win
		}
	})
	if err != notFound {
		t.Fatalf("Do = %v, want the first attempt's answer alone", err)
	}
	if !errors.Is(hedgeCause, ErrHedgeUnneeded) {
		t.Fatalf("hedge ended with cause %v, want ErrHedgeUnneeded", hedgeCause)
	}
}
