package httptransport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport"
)

// Middleware wraps an http.Handler.
type Middleware func(http.Handler) http.Handler

// Chain applies mw so that the first one listed is the outermost.
func Chain(h http.Handler, mw ...Middleware) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// Recover turns a panicking handler into a 500 JSON response and one log
// line with the stack; the process keeps serving. http.ErrAbortHandler is
// re-panicked, as net/http expects.
func Recover(logger log.Logger) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &statusWriter{ResponseWriter: w}
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(p)
				}
				id, _ := requestid.FromContext(r.Context())
				level.Error(logger).Log("msg", "handler panicked", "method", r.Method, "path", r.URL.Path,
					"request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rw.wroteHeader {
					WriteError(rw, svcerr.New(svcerr.Internal, "", "internal error"))
				}
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// RequestID takes X-Request-ID from the request (when valid) or makes one,
// puts it in the context and echoes it in the response.
func RequestID() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(requestid.Header)
			if !requestid.Valid(id) {
				id = requestid.New()
			}
			w.Header().Set(requestid.Header, id)
			next.ServeHTTP(w, r.WithContext(requestid.NewContext(r.Context(), id)))
		})
	}
}

// IdempotencyKey puts the request's Idempotency-Key in the context as
// the served call's key (idempotency.NewServedContext), where
// idempotency.Do finds it and keyed calls the handler makes derive theirs. A malformed
// key is refused with 400: serving the call without it would give up the
// protection the caller asked for.
func IdempotencyKey() Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := r.Header.Get(idempotency.Header)
			if key == "" {
				next.ServeHTTP(w, r)
				return
			}
			if !idempotency.Valid(key) {
				WriteError(w, svcerr.Errorf(svcerr.InvalidArgument, "invalid_idempotency_key",
					"%s must be 1 to %d printable ASCII characters without spaces", idempotency.Header, idempotency.MaxLen))
				return
			}
			next.ServeHTTP(w, r.WithContext(idempotency.NewServedContext(r.Context(), key)))
		})
	}
}

// LimitBody caps every request body at max bytes; reading past it fails
// with *http.MaxBytesError, which the error encoder answers with 413. A
// declared Content-Length over the limit is refused before the handler runs.
func LimitBody(max int64) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				WriteError(w, &http.MaxBytesError{Limit: max})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			// Said in the context, not by the body's type: a middleware of
			// the service's that wraps the body (to count or log it) would
			// hide a marker, and DecodeJSON would stack its 1 MiB on a
			// larger limit.
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyLimitedKey{}, true)))
		})
	}
}

// AccessLog logs one line per request: method, path, status, bytes,
// duration and request ID. Health probes are logged at debug level so they
// do not drown the requests that matter.
func AccessLog(logger log.Logger) Middleware { return accessLog(logger, transport.AccessAll) }

// accessLog is AccessLog for the requests mode asks for: with
// transport.AccessErrors only 5xx answers, with AccessOff none (a
// service under a flood wrote 5,000 lines a second, report j47c).
func accessLog(logger log.Logger, mode transport.AccessLog) Middleware {
	return func(next http.Handler) http.Handler {
		if mode == transport.AccessOff {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(rw, r)
			if mode == transport.AccessErrors && rw.status() < 500 {
				return
			}
			id, _ := requestid.FromContext(r.Context())
			lv := level.Info(logger)
			if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
				lv = level.Debug(logger)
			}
			lv.Log("msg", "access", "method", r.Method, "path", r.URL.Path, "status", rw.status(),
				"bytes", rw.bytes, "dur", time.Since(start).Round(time.Microsecond), "request_id", id,
				"remote", r.RemoteAddr)
		})
	}
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	code        int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): the status is still to come.
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach Flush, Hijack and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps streaming handlers working through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack keeps websocket-style handlers working through the wrapper.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("httptransport: response writer does not support hijacking")
}
