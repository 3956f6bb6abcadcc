package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/warren-mesh/warren/framework/svcerr"
)

func TestMiddleware_RefusesBeyondTheBurstWithResourceExhaustedAndRetryAfter(t *testing.T) {
	ran := 0
	e := Middleware(rate.NewLimiter(rate.Every(time.Hour), 2))(func(context.Context, any) (any, error) {
		ran++
		return "ok", nil
	})
	for i := range 2 {
		if _, err := e(context.Background(), nil); err != nil {
			t.Fatalf("call %d within the burst: %v", i+1, err)
		}
	}
	_, err := e(context.Background(), nil)
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Kind != svcerr.ResourceExhausted || se.Code != Code {
		t.Fatalf("third call: err = %v, want ResourceExhausted %s", err, Code)
	}
	// The next token is an hour away (less the moments the test took).
	if se.RetryAfter < 59*time.Minute || se.RetryAfter > time.Hour {
		t.Fatalf("RetryAfter = %v, want about an hour", se.RetryAfter)
	}
	if ran != 2 {
		t.Fatalf("the endpoint ran %d times, want 2", ran)
	}
}

func TestMiddleware_ARefusedCallTakesNoToken(t *testing.T) {
	l := rate.NewLimiter(rate.Every(time.Hour), 1)
	e := Middleware(l)(func(context.Context, any) (any, error) { return nil, nil })
	e(context.Background(), nil)
	for range 5 {
		e(context.Background(), nil) // refused
	}
	// Refusals gave their reservation back: the wait is still about an
	// hour, not six.
	_, err := e(context.Background(), nil)
	var se *svcerr.Error
	if !errors.As(err, &se) || se.RetryAfter > time.Hour {
		t.Fatalf("err = %v (RetryAfter %v), want a refusal with at most an hour to wait", err, se.RetryAfter)
	}
}

// A limiter with burst 0 lets nothing through; the refusal still says
// when to come back.
func TestMiddleware_BurstZeroRefusesEverything(t *testing.T) {
	ran := 0
	e := Middleware(rate.NewLimiter(100, 0))(func(context.Context, any) (any, error) { ran++; return nil, nil })
	for range 3 {
		_, err := e(context.Background(), nil)
		var se *svcerr.Error
		if !errors.As(err, &se) || se.Kind != svcerr.ResourceExhausted || se.Code != Code || se.RetryAfter <= 0 {
			t.Fatalf("err = %v, want ResourceExhausted %s with a RetryAfter", err, Code)
		}
	}
	if ran != 0 {
		t.Fatalf("the endpoint ran %d times, want 0", ran)
	}
}

// Calls refused while other calls are refused at the same moment take no
// token either. The refusal was a reservation given back, and x/time/rate
// gives back nothing of a reservation another was made after: under
// concurrent overload the bucket went thousands of tokens into debt, so a
// 20/s limiter let almost nothing through during a 1.5 s spike and then
// refused every call for minutes after the spike had ended.
func TestMiddleware_ConcurrentRefusalsLeaveNoDebtAfterTheSpike(t *testing.T) {
	l := rate.NewLimiter(20, 1)
	var ran atomic.Int64
	e := Middleware(l)(func(context.Context, any) (any, error) { ran.Add(1); return nil, nil })
	const spike = 1500 * time.Millisecond
	end := time.Now().Add(spike)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5_000_000 && time.Now().Before(end); i++ {
				e(context.Background(), nil)
			}
		}()
	}
	wg.Wait()
	// 20/s over 1.5 s is about 31 calls; any fair share of it will do.
	if n := ran.Load(); n < 5 {
		t.Errorf("%d calls ran during the %s spike at 20/s, want about 31", n, spike)
	}
	// A burst of 1 at 20/s is full again 50 ms after the spike: a call
	// passes well within 3 s of quiet.
	deadline := time.Now().Add(3 * time.Second)
	for {
		time.Sleep(100 * time.Millisecond)
		_, err := e(context.Background(), nil)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused 3s after the spike ended: %v (limiter at %.0f tokens)", err, l.TokensAt(time.Now()))
		}
	}
}
