// Package ratelimit is endpoint middleware that caps how often an endpoint
// runs, with golang.org/x/time/rate's token bucket. A refused call gets
// svcerr.ResourceExhausted (HTTP 429) with the time until the next token
// as Retry-After, so Warren's client waits that long before retrying it
// and never counts it against the instance.
//
//	e := payment.MakeEndpoints(svc)
//	e.Charge = ratelimit.Middleware(rate.NewLimiter(100, 20))(e.Charge) // 100/s, bursts of 20
package ratelimit

import (
	"context"
	"time"

	"github.com/go-kit/kit/endpoint"
	"golang.org/x/time/rate"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// Code is the svcerr code of a refused call.
const Code = "rate_limited"

// Middleware refuses calls the limiter has no token for, at once, with a
// ResourceExhausted error whose RetryAfter is when one will be there. The
// limiter may be shared by several endpoints (one budget for all).
func Middleware(l *rate.Limiter) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			now := time.Now()
			r := l.ReserveN(now, 1)
			if !r.OK() { // burst 0: nothing ever passes
				return nil, svcerr.Exhausted(Code, "rate limit exceeded", time.Second)
			}
			if d := r.DelayFrom(now); d > 0 {
				r.CancelAt(now) // the token goes back: this call is refused, not queued
				return nil, svcerr.Exhausted(Code, "rate limit exceeded", d)
			}
			return next(ctx, req)
		}
	}
}
