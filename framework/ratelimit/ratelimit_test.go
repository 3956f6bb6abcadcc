package ratelimit

import (
	"context"
	"errors"
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
