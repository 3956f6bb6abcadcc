package httptransport

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// TimeoutHeader carries how long the caller will wait for the answer, in
// whole milliseconds, as grpc-timeout does for gRPC: Warren's client sends
// it for an attempt with a deadline, and RequestTimeout gives the handler's
// context that deadline, so work (and the calls it makes to other
// services) stops when nobody waits for it any more.
const TimeoutHeader = "X-Request-Timeout"

// MaxRequestTimeout is the longest TimeoutHeader accepted.
const MaxRequestTimeout = time.Hour

// FormatTimeout is d as TimeoutHeader's value: whole milliseconds, at
// least 1 (an attempt whose time is up still says so).
func FormatTimeout(d time.Duration) string {
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// RequestTimeout bounds the request's context by its TimeoutHeader: the
// handler sees the caller's deadline (minus the time the request took to
// arrive, which it cannot know) as a Warren service over gRPC does. A
// request without the header keeps its context; a malformed one (not 1 to
// MaxRequestTimeout milliseconds) is refused with 400.
func RequestTimeout() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			v := r.Header[TimeoutHeader]
			if len(v) == 0 {
				next.ServeHTTP(w, r)
				return
			}
			ms, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil || len(v) > 1 || ms < 1 || ms > MaxRequestTimeout.Milliseconds() {
				WriteError(w, svcerr.Errorf(svcerr.InvalidArgument, "invalid_request_timeout",
					"%s must be one whole number of milliseconds, 1 to %d", TimeoutHeader, MaxRequestTimeout.Milliseconds()))
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), time.Duration(ms)*time.Millisecond)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}
