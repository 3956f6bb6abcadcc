// Package breaker is endpoint middleware that stops calling an endpoint
// that keeps failing, with sony/gobreaker (the breaker go-kit's
// circuitbreaker package wraps). While open it answers at once with
// svcerr.Unavailable (HTTP 503, code "breaker_open"), which Warren's
// client treats as "try another instance".
//
// Business errors (not found, invalid argument, …) mean the endpoint works;
// by default only Unavailable, DeadlineExceeded and Internal errors (and
// errors that are not svcerr errors) count as failures. A call cut
// because its caller gave up (its context cancelled: a caller shutting
// down, a hedge answered elsewhere) counts as neither: it says nothing of
// the endpoint. A caller's deadline that passed still counts: the
// endpoint was too slow for it.
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
// st.IsSuccessful defaults to Healthy; calls CallerGone reports are left
// out of the counts, beside any st.IsExcluded leaves out.
func New(st gobreaker.Settings) endpoint.Middleware {
	if st.IsSuccessful == nil {
		st.IsSuccessful = Healthy
	}
	if own := st.IsExcluded; own != nil {
		st.IsExcluded = func(err error) bool { return CallerGone(err) || own(err) }
	} else {
		st.IsExcluded = CallerGone
	}
	return Middleware(gobreaker.NewCircuitBreaker[any](st))
}

// Middleware runs calls through cb; a call cb refuses is an Unavailable
// error with code Code, "circuit breaker open" to callers, that wraps the
// breaker's name and gobreaker's reason for the logs (svcerr.Wrap).
// A cb made without New leaves calls whose caller gave up out of its
// counts only with IsExcluded: CallerGone in its settings.
func Middleware(cb *gobreaker.CircuitBreaker[any]) endpoint.Middleware {
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			resp, err := cb.Execute(func() (any, error) {
				resp, err := next(ctx, req)
				if err != nil && errors.Is(err, context.Canceled) && errors.Is(ctx.Err(), context.Canceled) {
					return resp, &callerGone{err} // for CallerGone; unwrapped below
				}
				return resp, err
			})
			if g, ok := err.(*callerGone); ok {
				return resp, g.err
			}
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

// callerGone marks, between the endpoint and the breaker's counts, a call
// that ended because its caller's context was cancelled.
type callerGone struct{ err error }

func (g *callerGone) Error() string { return g.err.Error() }
func (g *callerGone) Unwrap() error { return g.err }

// CallerGone reports whether err, as the breaker's IsExcluded sees it, is
// a call Middleware saw end with context.Canceled while its own context
// was cancelled: the caller gave up, and the call proves nothing about the
// endpoint. In a half-open breaker such a probe frees its place for the
// next one instead of opening the breaker again.
func CallerGone(err error) bool {
	var g *callerGone
	return errors.As(err, &g)
}
