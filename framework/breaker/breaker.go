// Package breaker is endpoint middleware that stops calling an endpoint
// that keeps failing, with sony/gobreaker (the breaker go-kit's
// circuitbreaker package wraps). While open it answers at once with
// svcerr.Unavailable (HTTP 503, code "breaker_open"), which Warren's
// client treats as "try another instance".
//
// Business errors (not found, invalid argument, …) mean the endpoint works;
// by default only Unavailable, DeadlineExceeded and Internal errors (and
// errors that are not svcerr errors) count as failures.
//
//	cb := breaker.New(gobreaker.Settings{Name: "ledger", Timeout: 10 * time.Second})
//	e.Charge = cb(e.Charge)
package breaker

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-kit/kit/endpoint"
	"github.com/sony/gobreaker/v2"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// Code is the svcerr code of a call refused by an open breaker.
const Code = "breaker_open"

// New returns middleware with one breaker of settings st for everything
// it wraps (wrap each endpoint with its own New for one breaker each).
// st.IsSuccessful defaults to Healthy.
func New(st gobreaker.Settings) endpoint.Middleware {
	if st.IsSuccessful == nil {
		st.IsSuccessful = Healthy
	}
	return Middleware(gobreaker.NewCircuitBreaker[any](st))
}

// Middleware runs calls through cb; a call cb refuses is an Unavailable
// error with code Code, "circuit breaker open" to callers, that wraps the
// breaker's name and gobreaker's reason for the logs (svcerr.Wrap).
func Middleware(cb *gobreaker.CircuitBreaker[any]) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := cb.Execute(func() (any, error) { return next(ctx, req) })
			if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
				return nil, svcerr.Wrap(svcerr.Unavailable, Code, "circuit breaker "+cb.State().String(), fmt.Errorf("breaker %q: %w", cb.Name(), err))
			}
			return resp, err
		}
	}
}

// Healthy reports whether err leaves the endpoint's health alone: no
// error, or a svcerr error that describes the request rather than the
// endpoint (every kind but Unavailable, DeadlineExceeded and Internal).
func Healthy(err error) bool {
	if err == nil {
		return true
	}
	var se *svcerr.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Kind {
	case svcerr.Unavailable, svcerr.DeadlineExceeded, svcerr.Internal:
		return false
	}
	return true
}
