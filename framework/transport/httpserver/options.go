package httpserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/shed"
)

type options struct {
	addr              string
	tls, selfCheckTLS *tls.Config
	maxBody           int64
	readHeader, idle  time.Duration
	body, bodyIdle    time.Duration
	middleware        []func(http.Handler) http.Handler
	shedder           *shed.Limiter
	shedOpts          []shed.HTTPOption
	noShed            bool
}

// Option configures a Server. An option with a bad value makes New fail.
type Option func(*options) error

func newOptions(opts []Option) (options, error) {
	o := options{addr: DefaultAddr, readHeader: DefaultReadHeaderTimeout, idle: DefaultIdleTimeout,
		body: httptransport.DefaultBodyTimeout, bodyIdle: httptransport.DefaultBodyIdleTimeout}
	for _, opt := range opts {
		if opt == nil {
			return o, errors.New("httpserver: nil option")
		}
		if err := opt(&o); err != nil {
			return o, fmt.Errorf("httpserver: %w", err)
		}
	}
	return o, nil
}

// CheckOptions reports what New would say of opts' values without
// building a Server, so that a caller composing options (the App) can
// refuse a bad one where it is given.
func CheckOptions(opts ...Option) error {
	_, err := newOptions(opts)
	return err
}

// WithAddr sets the listen address ("host:port"; port 0 picks a free
// one). Default ":8080".
func WithAddr(addr string) Option {
	return func(o *options) error {
		if addr == "" {
			return errors.New("empty listen address")
		}
		o.addr = addr
		return nil
	}
}

// WithTLS serves HTTPS with cfg and publishes the endpoint as https. For
// mutual TLS set cfg.ClientAuth to tls.RequireAndVerifyClientCert and
// cfg.ClientCAs to the CA of the callers' certificates: a caller without
// one is refused in the handshake, health endpoints included.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) error { o.tls = cfg; return nil }
}

// WithSelfCheckTLS sets the TLS configuration of the self-check's request.
// Default: present the server's own certificate and do not verify the
// answer's, since the self-check proves who answered with the nonce, not
// with the certificate.
func WithSelfCheckTLS(cfg *tls.Config) Option {
	return func(o *options) error { o.selfCheckTLS = cfg; return nil }
}

// WithMaxBodyBytes sets the request body limit (0: httptransport's
// default of 1 MiB).
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("negative body limit %d", n)
		}
		o.maxBody = n
		return nil
	}
}

// WithMiddleware wraps the service handler (not the health endpoints),
// innermost first; metrics and tracing hook in here.
func WithMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return func(o *options) error {
		for _, m := range mw {
			if m == nil {
				return errors.New("nil middleware")
			}
		}
		o.middleware = append(o.middleware, mw...)
		return nil
	}
}

// WithShedding sets the server's load shedder (package shed; nil: one
// with shed.New()'s defaults) and its HTTP options (routes never shed,
// Retry-After). Without it every server sheds with the defaults; pass a
// Limiter of your own to read its Stats (metrics.NewShed). Health and
// readiness are never shed.
func WithShedding(l *shed.Limiter, opts ...shed.HTTPOption) Option {
	return func(o *options) error {
		o.shedder, o.shedOpts, o.noShed = l, opts, false
		return nil
	}
}

// WithoutShedding turns load shedding off: the server queues whatever
// arrives, as net/http does.
func WithoutShedding() Option {
	return func(o *options) error { o.shedder, o.noShed = nil, true; return nil }
}

// WithTimeouts sets the time to read a request's headers and how long an
// idle keep-alive connection stays open (defaults 5s and 120s: DefaultReadHeaderTimeout, DefaultIdleTimeout).
func WithTimeouts(readHeader, idle time.Duration) Option {
	return func(o *options) error {
		if readHeader <= 0 || idle <= 0 {
			return fmt.Errorf("timeouts must be positive (read header %s, idle %s)", readHeader, idle)
		}
		o.readHeader, o.idle = readHeader, idle
		return nil
	}
}

// WithBodyTimeouts bounds reading each request body: in all, and each wait
// for more bytes (defaults httptransport.DefaultBodyTimeout, 30s, and
// DefaultBodyIdleTimeout, 10s; 0 turns one off). A client that stops
// sending gets 408 and never holds the drain at shutdown.
func WithBodyTimeouts(total, idle time.Duration) Option {
	return func(o *options) error {
		if total < 0 || idle < 0 {
			return fmt.Errorf("negative body timeouts (%s in all, %s idle)", total, idle)
		}
		o.body, o.bodyIdle = total, idle
		return nil
	}
}
