package httptransport

import (
	"context"
	"net/http"
	"sync/atomic"
)

// UnmatchedRoute is what RouteOf reports for a request no route matched
// (404, 405), so metrics and spans never get one label per stray path.
const UnmatchedRoute = "unmatched"

type routeKey struct{}

// routeSlot is filled by the Router and read by middleware outside it.
type routeSlot struct{ p atomic.Pointer[string] }

// WithRouteSlot returns r with a place in its context where the Router
// records the pattern that serves it ("GET /users/{id}"). Metrics and
// tracing middleware wrap the service's handler from outside, before the
// Router has matched anything; they call WithRouteSlot on the way in and
// RouteOf after the handler returned. A request that already has a slot
// keeps it, so several middleware share one.
func WithRouteSlot(r *http.Request) *http.Request {
	if _, ok := r.Context().Value(routeKey{}).(*routeSlot); ok {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), routeKey{}, &routeSlot{}))
}

// RouteOf returns the pattern the Router recorded for the request ("" if
// the request has no slot or has not reached a Router yet).
func RouteOf(ctx context.Context) string {
	if s, ok := ctx.Value(routeKey{}).(*routeSlot); ok {
		if p := s.p.Load(); p != nil {
			return *p
		}
	}
	return ""
}

func recordRoute(ctx context.Context, pattern string) {
	if s, ok := ctx.Value(routeKey{}).(*routeSlot); ok {
		s.p.Store(&pattern)
	}
}
