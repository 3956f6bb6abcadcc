package httptransport

import (
	"context"
	"net/http"
	"time"

	"github.com/go-kit/kit/endpoint"
	kittransport "github.com/go-kit/kit/transport"
	kithttp "github.com/go-kit/kit/transport/http"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/transport"
)

// NewServer returns a go-kit HTTP server for one endpoint with Warren's
// error encoder. Errors the encoder logs (5xx) are not logged a second
// time by go-kit's error handler. The endpoint's context carries the
// request's metadata (reqmeta: headers, peer, route), so endpoint
// middleware can read them; opts come after Warren's own (a ServerBefore
// of yours sees the metadata already in place).
func NewServer(e endpoint.Endpoint, dec kithttp.DecodeRequestFunc, enc kithttp.EncodeResponseFunc, logger log.Logger, opts ...kithttp.ServerOption) *kithttp.Server {
	base := []kithttp.ServerOption{
		kithttp.ServerBefore(func(ctx context.Context, r *http.Request) context.Context {
			return reqmeta.NewContext(ctx, reqmeta.FromHTTP(r, r.Pattern))
		}),
		kithttp.ServerErrorEncoder(ErrorEncoder(logger)),
		kithttp.ServerErrorHandler(kittransport.ErrorHandlerFunc(func(context.Context, error) {})),
	}
	return kithttp.NewServer(e, dec, enc, append(base, opts...)...)
}

// Handler wraps h with the middleware every Warren server gets, outermost
// first: request ID, access log, panic recovery, idempotency key, the
// caller's deadline (RequestTimeout), body read limits (time), body limit
// (size).
func Handler(h http.Handler, logger log.Logger, maxBody int64, opts ...HandlerOption) http.Handler {
	o := handlerOptions{bodyTimeout: DefaultBodyTimeout, bodyIdle: DefaultBodyIdleTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	return Chain(h, RequestID(), accessLog(logger, o.accessLog), Recover(logger), IdempotencyKey(), RequestTimeout(), BodyTimeouts(o.bodyTimeout, o.bodyIdle), LimitBody(maxBody))
}

// HandlerOption configures Handler.
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	bodyTimeout, bodyIdle time.Duration
	accessLog             transport.AccessLog
}

// WithAccessLog says which requests get an access line (default: all).
func WithAccessLog(mode transport.AccessLog) HandlerOption {
	return func(o *handlerOptions) { o.accessLog = mode }
}

// WithBodyTimeouts sets the body read limits (default DefaultBodyTimeout,
// DefaultBodyIdleTimeout; see BodyTimeouts). Zero turns a limit off;
// negative values keep the default.
func WithBodyTimeouts(total, idle time.Duration) HandlerOption {
	return func(o *handlerOptions) {
		if total >= 0 {
			o.bodyTimeout = total
		}
		if idle >= 0 {
			o.bodyIdle = idle
		}
	}
}
