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
//
// A refused call takes nothing from the limiter: it is asked with AllowN,
// which changes nothing when it says no. A reservation given back
// (ReserveN, then CancelAt) is not the same: x/time/rate returns nothing of
// one that another reservation followed, so concurrent refusals put the
// bucket into debt, and after a spike the endpoint refused every call for
// as long as that debt took to refill (minutes at 20/s).
func Middleware(l *rate.Limiter) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			now := time.Now()
			if l.AllowN(now, 1) {
				return next(ctx, req)
			}
			return nil, svcerr.Exhausted(Code, "rate limit exceeded", nextToken(l, now))
		}
	}
}

// nextToken is how long after now the limiter will have a token.
func nextToken(l *rate.Limiter, now time.Time) time.Duration {
	lim := l.Limit()
	switch {
	case l.Burst() < 1: // nothing ever passes
		return time.Second
	case lim <= 0: // no refill: the burst was all there was
		return rate.InfDuration
	}
	missing := 1 - l.TokensAt(now)
	// At least a millisecond: a token that came in since AllowN said no
	// still makes this call a refusal, with a wait to say.
	return max(time.Duration(missing/float64(lim)*float64(time.Second)), time.Millisecond)
}
