package shed

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/grpctransport"
)

// GRPCOption configures UnaryServerInterceptor. An option given a bad
// value makes it fail with an error that names it.
type GRPCOption func(*grpcSettings) error

type grpcSettings struct {
	exempt                    []string
	retryAfter, maxRetryAfter time.Duration
}

// WithExemptMethods adds gRPC methods that are never shed, as full method
// names ("/user.v1.User/Get") or service prefixes ending in "/"
// ("/admin.v1.Admin/"). grpc.health.v1 is always exempt.
func WithExemptMethods(methods ...string) GRPCOption {
	return func(s *grpcSettings) error {
		for _, m := range methods {
			if !strings.HasPrefix(m, "/") {
				return fmt.Errorf("shed.WithExemptMethods(%q): want /package.Service/Method or /package.Service/", m)
			}
		}
		s.exempt = append(s.exempt, methods...)
		return nil
	}
}

// WithGRPCRetryAfter sets the RetryInfo range of overload answers, as
// WithRetryAfter does for HTTP (default 1s to 5s, growing with the shed
// ratio).
func WithGRPCRetryAfter(min, max time.Duration) GRPCOption {
	return func(s *grpcSettings) error {
		if min <= 0 || max < min {
			return fmt.Errorf("shed.WithGRPCRetryAfter(%s, %s): want 0 < min ≤ max", min, max)
		}
		s.retryAfter, s.maxRetryAfter = min, max
		return nil
	}
}

// DefaultExemptMethods are never shed: health checks must answer under
// any load, or an orchestrator would restart or withdraw a busy instance.
var DefaultExemptMethods = []string{grpctransport.HealthMethodPrefix}

// UnaryServerInterceptor asks l about every unary call except the exempt
// methods and refuses the rest at once with RESOURCE_EXHAUSTED, reason
// "overloaded" and a RetryInfo (grpctransport.OverloadStatus): the gRPC
// twin of Middleware's 503. A Warren client rebuilds it as
// svcerr.ErrOverloaded, tries another instance at once and leaves this one
// alone for the RetryInfo's delay.
func UnaryServerInterceptor(l *Limiter, opts ...GRPCOption) (grpc.UnaryServerInterceptor, error) {
	if l == nil {
		return nil, errors.New("shed: nil Limiter")
	}
	s := grpcSettings{retryAfter: time.Second, maxRetryAfter: 5 * time.Second}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("shed: nil gRPC option")
		}
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	exempt := append(append([]string(nil), DefaultExemptMethods...), s.exempt...)
	span := s.maxRetryAfter - s.retryAfter
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		for _, e := range exempt {
			if info.FullMethod == e || (strings.HasSuffix(e, "/") && strings.HasPrefix(info.FullMethod, e)) {
				return handler(ctx, req)
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err // the caller left; nobody would read an answer
		}
		tok, why := l.Acquire()
		if why != Admitted {
			ra := s.retryAfter + time.Duration(float64(span)*l.ShedRatio())
			return nil, grpctransport.OverloadStatus(ra.Round(time.Second)).Err()
		}
		ctx = tok.watch(ctx) // before the defer copies tok
		defer tok.Release()
		return handler(ctx, req)
	}, nil
}
