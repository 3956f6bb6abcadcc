package app

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/httpserver"
)

// Defaults. The propagation grace is how long clients need to see a
// deregistration (watch event + balancer update) before the listener goes.
const (
	DefaultGracePeriod      = 2 * time.Second
	DefaultDrainTimeout     = 15 * time.Second
	DefaultSelfCheckTimeout = 5 * time.Second
	// DefaultRegisterTimeout bounds each registration the readiness
	// watchdog makes again. The first registration has no bound unless
	// WithRegisterTimeout sets one.
	DefaultRegisterTimeout  = 15 * time.Second
	DefaultWithdrawTimeout  = 5 * time.Second
	DefaultReleaseTimeout   = 5 * time.Second
	DefaultWatchdogInterval = 5 * time.Second
	DefaultWatchdogFailures = 3
	DefaultReadHeaderTime   = httpserver.DefaultReadHeaderTimeout
	DefaultIdleTimeout      = httpserver.DefaultIdleTimeout
)

type options struct {
	version, id, zone string
	listen, advertise string
	weight            int
	tags              []string
	metadata          map[string]string
	logger            log.Logger

	grace, drain, selfCheckTimeout   time.Duration
	registerTimeout, withdrawTimeout time.Duration
	accessLog                        transport.AccessLog
	releaseTimeout                   time.Duration
	selfCheck, signals               bool

	watchdogInterval time.Duration
	watchdogFailures int
	readiness        map[string]health.Check
	closers          []io.Closer
	servers          []transport.Server

	// The HTTP server New builds from its handler: its options as given,
	// and the timeouts the debug listener shares with it.
	http             []httpserver.Option
	readHeader, idle time.Duration

	debugAddr    string
	debugHandler http.Handler
	debugHosts   []string

	handshakes *transport.HandshakeLog
	startLine  []any // WithStartLine
}

// Option configures an App. An option given a bad value makes New fail
// with an error that names it.
type Option func(*options) error

func newOptions(opts []Option) (options, error) {
	o := options{
		listen:           httpserver.DefaultAddr,
		logger:           log.NewNopLogger(),
		grace:            DefaultGracePeriod,
		drain:            DefaultDrainTimeout,
		selfCheckTimeout: DefaultSelfCheckTimeout,
		withdrawTimeout:  DefaultWithdrawTimeout,
		releaseTimeout:   DefaultReleaseTimeout,
		selfCheck:        true,
		signals:          true,
		watchdogInterval: DefaultWatchdogInterval,
		watchdogFailures: DefaultWatchdogFailures,
		readiness:        map[string]health.Check{},
		readHeader:       DefaultReadHeaderTime,
		idle:             DefaultIdleTimeout,
	}
	for _, opt := range opts {
		if opt == nil {
			return o, errors.New("app: nil option")
		}
		if err := opt(&o); err != nil {
			return o, fmt.Errorf("app: %w", err)
		}
	}
	return o, nil
}

// httpOptions configure the HTTP server New builds from its handler.
func (o options) httpOptions() []httpserver.Option {
	return append([]httpserver.Option{httpserver.WithAddr(o.listen)}, o.http...)
}

// forward passes an HTTP server option through, checked where it is given
// so that its error names the App option.
func forward(name string, opt httpserver.Option) Option {
	return func(o *options) error {
		if err := httpserver.CheckOptions(opt); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		o.http = append(o.http, opt)
		return nil
	}
}

func positive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s must be positive, got %s", name, d)
	}
	return nil
}

func nonNegative(name string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s must not be negative, got %s", name, d)
	}
	return nil
}

// WithServer adds a transport (gRPC, say) next to the HTTP server New
// builds from its handler. Transports are listened, served, checked and
// drained in the order given, the HTTP one first, and each publishes one
// endpoint of the instance in that order.
func WithServer(s transport.Server) Option {
	return func(o *options) error {
		if s == nil {
			return errors.New("WithServer: nil server")
		}
		o.servers = append(o.servers, s)
		return nil
	}
}

// WithVersion sets the version published with the instance.
func WithVersion(v string) Option { return func(o *options) error { o.version = v; return nil } }

// WithListen sets the HTTP server's listen address ("host:port"; port 0
// picks a free one). Default ":8080".
func WithListen(addr string) Option {
	return func(o *options) error {
		if addr == "" {
			return errors.New("WithListen: empty address")
		}
		o.listen = addr
		return nil
	}
}

// WithAdvertise sets the address published to discovery: "host",
// "host:port" or "host:0". The host applies to every transport; a port
// applies to the first transport only (the HTTP one), others publish their
// real listen port, as does the first without a port (or with port 0).
// Default host: the listen host when it is a specific address, else the
// first non-loopback interface address.
func WithAdvertise(addr string) Option {
	return func(o *options) error { o.advertise = addr; return nil }
}

// WithID overrides the instance ID (default name-host-port of the first
// transport, stable across restarts so a restarted process replaces its
// own record).
func WithID(id string) Option { return func(o *options) error { o.id = id; return nil } }

// WithZone sets the zone published with the instance (zone-aware balancing).
func WithZone(z string) Option { return func(o *options) error { o.zone = z; return nil } }

// WithWeight sets the balancing weight published with the instance.
func WithWeight(w int) Option {
	return func(o *options) error {
		if w < 0 {
			return fmt.Errorf("WithWeight: negative weight %d", w)
		}
		o.weight = w
		return nil
	}
}

// WithTags sets the tags published with the instance.
func WithTags(tags ...string) Option { return func(o *options) error { o.tags = tags; return nil } }

// WithMetadata sets free-form metadata published with the instance.
func WithMetadata(md map[string]string) Option {
	return func(o *options) error { o.metadata = md; return nil }
}

// WithLogger sets the logger; every phase logs one line to it.
func WithLogger(l log.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		o.logger = l
		return nil
	}
}

// WithStartLine has the listen phase write keyvals as an info line of its
// own, before its phase=listen line: once the instance has its ID, so a
// logger that names the instance (bootstrap's id=) names it on this line
// too. bootstrap writes its phase=config line, the settings that differ
// from the defaults, this way.
func WithStartLine(keyvals ...any) Option {
	return func(o *options) error {
		if len(keyvals)%2 != 0 {
			return errors.New("WithStartLine: odd number of keyvals")
		}
		o.startLine = keyvals
		return nil
	}
}

// WithGracePeriod sets how long the service keeps serving after it has
// withdrawn from discovery, so clients see the withdrawal before the
// listeners close. 0 in tests.
func WithGracePeriod(d time.Duration) Option {
	return func(o *options) error { o.grace = d; return nonNegative("WithGracePeriod", d) }
}

// WithDrainTimeout bounds how long in-flight calls get to finish, on every
// transport together. 0 means no drain: connections are closed at once,
// cutting the calls in flight.
func WithDrainTimeout(d time.Duration) Option {
	return func(o *options) error { o.drain = d; return nonNegative("WithDrainTimeout", d) }
}

// WithWithdrawTimeout bounds phase 6, the registry's Deregister (default
// 5 s): past it shutdown goes on with a warning, and the record goes when
// the registry's own expiry removes it (a lease or a TTL). A registry's
// own bound applies within it (Consul's WithDeregisterTimeout, 5 s): raise
// both for a registry reached over a slow link.
func WithWithdrawTimeout(d time.Duration) Option {
	return func(o *options) error { o.withdrawTimeout = d; return positive("WithWithdrawTimeout", d) }
}

// WithAccessLog says which served requests and calls get an access line,
// on every transport: transport.AccessAll (default), AccessErrors (the
// server's failures only) or AccessOff (--access-log).
func WithAccessLog(mode transport.AccessLog) Option {
	return func(o *options) error {
		if mode < transport.AccessAll || mode > transport.AccessOff {
			return fmt.Errorf("WithAccessLog: unknown mode %d", mode)
		}
		o.accessLog = mode
		return nil
	}
}

// WithSelfCheck turns the pre-registration self-check on (default) or off.
// Turn it off only on networks where a process cannot reach its own
// advertised address (no hairpin routing).
func WithSelfCheck(on bool) Option { return func(o *options) error { o.selfCheck = on; return nil } }

// WithSelfCheckTimeout bounds the self-check of every transport together.
func WithSelfCheckTimeout(d time.Duration) Option {
	return func(o *options) error { o.selfCheckTimeout = d; return positive("WithSelfCheckTimeout", d) }
}

// WithRegisterTimeout bounds the first registration: past it Run fails
// with ErrRegister. 0, the default, sets no bound: a registry that is down
// when the service starts is waited for (its registrar retries with
// backoff, /readyz is not ready meanwhile, a signal or the end of ctx ends
// the wait), so a site that comes back with its registries last does not
// leave every service exited or crash-looping. Final refusals (an ID
// another live process holds, credentials refused) end it at once either
// way.
func WithRegisterTimeout(d time.Duration) Option {
	return func(o *options) error { o.registerTimeout = d; return nonNegative("WithRegisterTimeout", d) }
}

// WithSignals makes Run handle SIGINT, SIGTERM and SIGHUP (default true):
// each stops the service gracefully; a SIGHUP the process was started
// ignoring (nohup) stays ignored. Embedders that own signal handling turn
// it off and cancel Run's context instead.
func WithSignals(on bool) Option { return func(o *options) error { o.signals = on; return nil } }

// WithReadinessCheck adds a named readiness check (a dependency, a queue).
// The watchdog withdraws the instance from discovery when these fail.
func WithReadinessCheck(name string, c health.Check) Option {
	return func(o *options) error {
		if name == "" || c == nil {
			return errors.New("WithReadinessCheck: empty name or nil check")
		}
		o.readiness[name] = c
		return nil
	}
}

// WithWatchdog sets how often readiness checks run in the background and
// how many consecutive failures withdraw the instance. failures ≤ 0 turns
// the watchdog off; otherwise interval must be positive.
func WithWatchdog(interval time.Duration, failures int) Option {
	return func(o *options) error {
		if failures > 0 && interval <= 0 {
			return fmt.Errorf("WithWatchdog: interval must be positive, got %s (failures ≤ 0 turns the watchdog off)", interval)
		}
		o.watchdogInterval, o.watchdogFailures = interval, failures
		return nil
	}
}

// WithBodyTimeouts bounds reading each HTTP request body: in all, and
// each wait for more bytes (defaults 30s and 10s; 0 turns one off). A
// client that stops sending gets 408 and never holds the drain.
func WithBodyTimeouts(total, idle time.Duration) Option {
	return forward("WithBodyTimeouts", httpserver.WithBodyTimeouts(total, idle))
}

// WithMaxBodyBytes sets the HTTP request body limit (default 1 MiB).
func WithMaxBodyBytes(n int64) Option {
	return forward("WithMaxBodyBytes", httpserver.WithMaxBodyBytes(n))
}

// WithHTTPTimeouts sets the HTTP server's header read timeout and idle
// keep-alive timeout (defaults 5s and 120s: DefaultReadHeaderTime,
// DefaultIdleTimeout); the debug listener uses them too.
func WithHTTPTimeouts(readHeader, idle time.Duration) Option {
	fwd := forward("WithHTTPTimeouts", httpserver.WithTimeouts(readHeader, idle))
	return func(o *options) error {
		if err := fwd(o); err != nil {
			return err
		}
		o.readHeader, o.idle = readHeader, idle
		return nil
	}
}

// WithHTTPMiddleware wraps the HTTP service handler (not the health
// endpoints), innermost first; metrics and tracing hook in here.
func WithHTTPMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return forward("WithHTTPMiddleware", httpserver.WithMiddleware(mw...))
}

// WithShedding sets the HTTP server's load shedder and its options (routes
// never shed: shed.WithExempt("POST /payments/{id}/capture")). l may be nil
// to keep the default limiter with these options. Without this option the
// server sheds with shed.New()'s defaults; see docs/overload.md.
func WithShedding(l *shed.Limiter, opts ...shed.HTTPOption) Option {
	return forward("WithShedding", httpserver.WithShedding(l, opts...))
}

// WithoutShedding turns the HTTP server's load shedding off.
func WithoutShedding() Option { return forward("WithoutShedding", httpserver.WithoutShedding()) }

// WithTLS serves HTTPS with cfg and publishes the HTTP endpoint as https,
// so clients call it over TLS. For mutual TLS set cfg.ClientAuth to
// tls.RequireAndVerifyClientCert and cfg.ClientCAs to the CA that signs the
// callers' certificates: a caller without one is refused in the handshake
// (health endpoints included; probe with `SERVICE healthcheck`, which
// presents the service's own certificate). See docs/security.md.
func WithTLS(cfg *tls.Config) Option { return forward("WithTLS", httpserver.WithTLS(cfg)) }

// WithSelfCheckTLS sets the TLS configuration of the self-check's request
// to the advertised HTTPS endpoint. Default: present the server's own
// certificate and do not verify the answer's, since the self-check proves
// who answered with a per-process nonce, not with the certificate.
func WithSelfCheckTLS(cfg *tls.Config) Option {
	return forward("WithSelfCheckTLS", httpserver.WithSelfCheckTLS(cfg))
}

// WithDebugListener serves h on a listener of its own at addr (port 0
// picks one) from the listen phase until the process ends: /metrics and
// /debug/pprof/* (metrics.Handler). It is not a transport and gets no
// endpoint of the instance; its /metrics URL is published in the
// instance's metadata under MetricsMetadataKey ("metrics") so scrapers
// find it through discovery, which is also why it must listen where the
// scraper can reach it: keep it on an admin network, not the internet.
// The address is logged in the listen phase and returned by App.DebugAddr.
func WithDebugListener(addr string, h http.Handler) Option {
	return func(o *options) error {
		if h == nil {
			return errors.New("WithDebugListener: nil handler")
		}
		o.debugAddr, o.debugHandler = addr, h
		return nil
	}
}

// WithDebugAllowedHosts adds names the debug listener answers to. It
// answers only requests whose Host is an IP address, localhost, its own
// listen host or the instance's advertised host (where the published
// /metrics URL points), and refuses others with 421, so a DNS-rebinding
// page in an operator's browser cannot read /metrics or /debug/pprof
// (httptransport.AllowedHosts). Add the names scrapers or operators use
// that are none of those (a Kubernetes Service name, an admin alias).
func WithDebugAllowedHosts(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if err := httptransport.CheckAllowedHost(h); err != nil {
				return fmt.Errorf("WithDebugAllowedHosts: %w", err)
			}
		}
		o.debugHosts = append(o.debugHosts, hosts...)
		return nil
	}
}

// WithHandshakeLog sets where the transports report failed TLS
// handshakes: one line for the first, then at most one per interval with
// the count (transport.HandshakeLog). Default: one on the App's logger,
// every DefaultHandshakeLogEvery. Pass one to read its counts
// (metrics.NewHandshakes).
func WithHandshakeLog(h *transport.HandshakeLog) Option {
	return func(o *options) error {
		if h == nil {
			return errors.New("WithHandshakeLog: nil log")
		}
		o.handshakes = h
		return nil
	}
}

// WithCloser adds something the service owns (a client of another
// service, a database pool) to close in the release phase: after in-flight
// calls have drained, before the registry is closed. Closers run in the
// reverse order they were added, also when start-up fails.
func WithCloser(c io.Closer) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithCloser: nil closer")
		}
		o.closers = append(o.closers, c)
		return nil
	}
}
