package grpctransport

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport"
)

// RequestIDKey is the metadata key of the request ID (gRPC metadata keys
// are lower case; the value is requestid.Header's).
var RequestIDKey = strings.ToLower(requestid.Header)

// IdempotencyKey is the metadata key of a keyed call's idempotency key
// (idempotency.Header in lower case); the interceptor puts it in the
// context for idempotency.Do.
var IdempotencyKey = strings.ToLower(idempotency.Header)

var errPanic = errors.New("panic") // answered as INTERNAL; the panic is logged

// UnaryServerInterceptor is Warren's outer layer of every unary call, the
// gRPC twin of httptransport.Handler: it takes the caller's request ID (or
// makes one) into the context and echoes it in the header, turns a panic
// into INTERNAL, and answers every error as Status(err), logging the text
// of the internal ones (which the caller is not shown) with the request
// ID and method. Every call gets an access line as an HTTP request does
// (health checks at debug level, as /healthz).
func UnaryServerInterceptor(logger log.Logger, opts ...InterceptorOption) grpc.UnaryServerInterceptor {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	var o interceptorOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		id, key := "", ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(RequestIDKey); len(v) > 0 && requestid.Valid(v[0]) {
				id = v[0]
			}
			if v := md.Get(IdempotencyKey); len(v) > 0 {
				key = v[0]
			}
		}
		if id == "" {
			id = requestid.New()
		}
		ctx = requestid.NewContext(ctx, id)
		start := time.Now()
		defer func() { accessLine(ctx, logger, o.accessLog, info.FullMethod, id, err, time.Since(start)) }() // after the recover below
		if key != "" {
			if !idempotency.Valid(key) {
				return nil, Status(svcerr.Errorf(svcerr.InvalidArgument, "invalid_idempotency_key",
					"%s must be 1 to %d printable ASCII characters without spaces", IdempotencyKey, idempotency.MaxLen)).Err()
			}
			ctx = idempotency.NewServedContext(ctx, key) // where idempotency.Do and Derive find it
		}
		_ = grpc.SetHeader(ctx, metadata.Pairs(RequestIDKey, id)) // fails only outside a real call (tests calling the handler directly)
		defer func() {
			if p := recover(); p != nil {
				level.Error(logger).Log("msg", "panic in gRPC handler", "method", info.FullMethod, "request_id", id,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				resp, err = nil, Status(errPanic).Err()
			}
		}()
		resp, err = handler(ctx, req)
		if err == nil {
			return resp, nil
		}
		st := Status(err)
		if st.Code() == codes.Internal || st.Code() == codes.Unknown {
			level.Error(logger).Log("msg", "request failed", "method", info.FullMethod, "code", st.Code(), "request_id", id, "err", err)
		}
		return nil, st.Err()
	}
}

// UnknownServiceHandler answers a call of a method the server does not
// serve (install it with grpc.UnknownServiceHandler): UNIMPLEMENTED with
// UnknownMethodStatus — grpc-go's text plus Warren's ErrorInfo, reason
// CodeUnknownMethod when known(service) says the server serves the
// method's service, else CodeUnknownService — by which callers retry it
// on another instance and hold it against none (in a rolling deploy an
// instance of the previous release lacks the new methods). Each call gets
// an access line and its request ID echoed as UnaryServerInterceptor's
// calls do (options: WithAccessLog), so "is anyone still calling the
// method I removed?" has an answer. No request message is read.
func UnknownServiceHandler(logger log.Logger, known func(service string) bool, opts ...InterceptorOption) grpc.StreamHandler {
	if logger == nil {
		logger = log.NewNopLogger()
	}
	var o interceptorOptions
	for _, opt := range opts {
		opt(&o)
	}
	return func(_ any, stream grpc.ServerStream) (err error) {
		start := time.Now()
		ctx := stream.Context()
		id := ""
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(RequestIDKey); len(v) > 0 && requestid.Valid(v[0]) {
				id = v[0]
			}
		}
		if id == "" {
			id = requestid.New()
		}
		full, _ := grpc.MethodFromServerStream(stream)
		defer func() { accessLine(ctx, logger, o.accessLog, full, id, err, time.Since(start)) }()
		_ = stream.SetHeader(metadata.Pairs(RequestIDKey, id))
		// grpc-go calls this only for a well-formed "/service/method".
		svc, method := strings.TrimPrefix(full, "/"), ""
		if i := strings.LastIndex(svc, "/"); i >= 0 {
			svc, method = svc[:i], svc[i+1:]
		}
		return UnknownMethodStatus(svc, method, known != nil && known(svc)).Err()
	}
}

// InterceptorOption configures UnaryServerInterceptor.
type InterceptorOption func(*interceptorOptions)

type interceptorOptions struct{ accessLog transport.AccessLog }

// WithAccessLog says which calls get an access line (default: all).
func WithAccessLog(mode transport.AccessLog) InterceptorOption {
	return func(o *interceptorOptions) { o.accessLog = mode }
}

// ServerFailure reports whether code is the server's failure, as an HTTP
// 5xx is: the codes gateways answer 5xx for. transport.AccessErrors logs
// them, and the mesh page counts them as errors.
func ServerFailure(code codes.Code) bool {
	switch code {
	case codes.Unknown, codes.Internal, codes.DataLoss, codes.Unimplemented, codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// HealthMethodPrefix starts the full method name of every grpc.health.v1
// call: the access log, the metrics and the shedder treat these as /healthz
// is treated on HTTP.
const HealthMethodPrefix = "/grpc.health.v1.Health/"

// IsHealthMethod reports whether fullMethod is a grpc.health.v1 call.
func IsHealthMethod(fullMethod string) bool { return strings.HasPrefix(fullMethod, HealthMethodPrefix) }

// accessLine logs one served call: the gRPC twin of httptransport.AccessLog.
func accessLine(ctx context.Context, logger log.Logger, mode transport.AccessLog, method, id string, err error, d time.Duration) {
	if mode == transport.AccessOff || mode == transport.AccessErrors && !ServerFailure(status.Code(err)) {
		return
	}
	lv := level.Info(logger)
	if IsHealthMethod(method) {
		lv = level.Debug(logger)
	}
	remote := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		remote = p.Addr.String()
	}
	code := codes.OK
	if err != nil {
		code = status.Code(err)
	}
	lv.Log("msg", "access", "transport", "grpc", "method", method, "code", code, "dur", d.Round(time.Microsecond),
		"request_id", id, "remote", remote)
}
