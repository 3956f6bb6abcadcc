package grpcserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/shed"
)

type options struct {
	addr              string
	addrDefaulted     bool // Settings chose addr (no --grpc-listen): the listen error says so
	tls, selfCheckTLS *tls.Config
	serverOpts        []grpc.ServerOption
	interceptors      []grpc.UnaryServerInterceptor
	shedder           *shed.Limiter
	shedOpts          []shed.GRPCOption
	noShed            bool
	watchEvery        time.Duration
	reflection        bool
}

// Option configures a Server. An option with a bad value makes New fail.
type Option func(*options) error

// WithAddr sets the listen address ("host:port"; port 0 picks a free
// one). Default ":9090".
func WithAddr(addr string) Option {
	return func(o *options) error {
		if addr == "" {
			return errors.New("empty listen address")
		}
		o.addr = addr
		return nil
	}
}

// WithTLS serves gRPC over TLS with cfg and publishes the endpoint as
// grpcs. For mutual TLS set cfg.ClientAuth to
// tls.RequireAndVerifyClientCert and cfg.ClientCAs to the callers' CA: a
// caller without a certificate is refused in the handshake, health
// included (tlsconf.Server builds such a configuration).
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error {
		if cfg == nil {
			return errors.New("WithTLS(nil)")
		}
		o.tls = cfg
		return nil
	}
}

// WithSelfCheckTLS sets the TLS configuration of the self-check's call.
// Default tlsconf.SelfCheck: present the server's own certificate, do not
// verify the answer's (the nonce proves who answered).
func WithSelfCheckTLS(cfg *tls.Config) Option {
	return func(o *options) error { o.selfCheckTLS = cfg; return nil }
}

// WithServerOptions adds grpc.ServerOptions (message size limits,
// keepalive, stats handlers for tracing). Credentials come from WithTLS,
// not from here.
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) error {
		for _, s := range opts {
			if s == nil {
				return errors.New("nil grpc.ServerOption")
			}
		}
		o.serverOpts = append(o.serverOpts, opts...)
		return nil
	}
}

// WithUnaryInterceptors adds unary interceptors inside Warren's own (load
// shedding, request IDs, panic recovery, error statuses), outermost first;
// metrics and auth hook in here.
func WithUnaryInterceptors(in ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) error {
		for _, i := range in {
			if i == nil {
				return errors.New("nil interceptor")
			}
		}
		o.interceptors = append(o.interceptors, in...)
		return nil
	}
}

// WithShedding sets the server's load shedder (nil: one with shed.New()'s
// defaults) and its gRPC options. Without it every server sheds with the
// defaults; pass the HTTP server's Limiter to have both transports share
// one view of the process's load. Health is never shed.
func WithShedding(l *shed.Limiter, opts ...shed.GRPCOption) Option {
	return func(o *options) error {
		o.shedder, o.shedOpts, o.noShed = l, opts, false
		return nil
	}
}

// WithoutShedding turns load shedding off.
func WithoutShedding() Option {
	return func(o *options) error { o.shedder, o.noShed = nil, true; return nil }
}

// WithWatchInterval sets how often a grpc.health.v1 Watch stream
// re-evaluates readiness (default 1s). Check always evaluates it afresh.
func WithWatchInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("watch interval %s must be positive", d)
		}
		o.watchEvery = d
		return nil
	}
}

// WithReflection serves gRPC server reflection (grpc.reflection.v1 and
// v1alpha), so grpcurl and similar tools list and call the service's
// methods without its .proto files. Off by default: it tells anyone who
// can connect every method and message the server has.
func WithReflection() Option {
	return func(o *options) error { o.reflection = true; return nil }
}
