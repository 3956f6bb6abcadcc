package app

import (
	"crypto/tls"
	"io"
	"net/http"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/health"
)

// Defaults. The propagation grace is how long clients need to see a
// deregistration (watch event + balancer update) before the listener goes.
const (
	DefaultGracePeriod      = 2 * time.Second
	DefaultDrainTimeout     = 15 * time.Second
	DefaultSelfCheckTimeout = 5 * time.Second
	DefaultRegisterTimeout  = 15 * time.Second
	DefaultWithdrawTimeout  = 5 * time.Second
	DefaultReleaseTimeout   = 5 * time.Second
	DefaultWatchdogInterval = 5 * time.Second
	DefaultWatchdogFailures = 3
	DefaultReadHeaderTime   = 5 * time.Second
	DefaultIdleTimeout      = 90 * time.Second
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
	releaseTimeout                   time.Duration
	selfCheck, signals               bool

	watchdogInterval time.Duration
	watchdogFailures int
	readiness        map[string]health.Check
	maxBody          int64
	readHeader, idle time.Duration
	middleware       []func(http.Handler) http.Handler
	closers          []io.Closer

	tls, selfCheckTLS *tls.Config
	debugAddr         string
	debugHandler      http.Handler
}

func defaults() options {
	return options{
		listen:           ":8080",
		logger:           log.NewNopLogger(),
		grace:            DefaultGracePeriod,
		drain:            DefaultDrainTimeout,
		selfCheckTimeout: DefaultSelfCheckTimeout,
		registerTimeout:  DefaultRegisterTimeout,
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
}

// Option configures an App.
type Option func(*options)

// WithVersion sets the version published with the instance.
func WithVersion(v string) Option { return func(o *options) { o.version = v } }

// WithListen sets the listen address ("host:port"; port 0 picks a free
// one). Default ":8080".
func WithListen(addr string) Option { return func(o *options) { o.listen = addr } }

// WithAdvertise sets the address published to discovery: "host",
// "host:port" or "host:0". Without a port (or port 0) the real listen port
// is used. Default: the listen host when it is a specific address, else the
// first non-loopback interface address.
func WithAdvertise(addr string) Option { return func(o *options) { o.advertise = addr } }

// WithID overrides the instance ID (default name-host-port, stable across
// restarts so a restarted process replaces its own record).
func WithID(id string) Option { return func(o *options) { o.id = id } }

// WithZone sets the zone published with the instance (zone-aware balancing).
func WithZone(z string) Option { return func(o *options) { o.zone = z } }

// WithWeight sets the balancing weight published with the instance.
func WithWeight(w int) Option { return func(o *options) { o.weight = w } }

// WithTags sets the tags published with the instance.
func WithTags(tags ...string) Option { return func(o *options) { o.tags = tags } }

// WithMetadata sets free-form metadata published with the instance.
func WithMetadata(md map[string]string) Option { return func(o *options) { o.metadata = md } }

// WithLogger sets the logger; every phase logs one line to it.
func WithLogger(l log.Logger) Option { return func(o *options) { o.logger = l } }

// WithGracePeriod sets how long the service keeps serving after it has
// withdrawn from discovery, so clients see the withdrawal before the
// listener closes. 0 in tests.
func WithGracePeriod(d time.Duration) Option { return func(o *options) { o.grace = d } }

// WithDrainTimeout bounds how long in-flight requests get to finish.
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drain = d } }

// WithSelfCheck turns the pre-registration self-check on (default) or off.
// Turn it off only on networks where a process cannot reach its own
// advertised address (no hairpin routing).
func WithSelfCheck(on bool) Option { return func(o *options) { o.selfCheck = on } }

// WithSelfCheckTimeout bounds the self-check.
func WithSelfCheckTimeout(d time.Duration) Option { return func(o *options) { o.selfCheckTimeout = d } }

// WithRegisterTimeout bounds the first registration.
func WithRegisterTimeout(d time.Duration) Option { return func(o *options) { o.registerTimeout = d } }

// WithSignals makes Run handle SIGINT and SIGTERM (default true). Embedders
// that own signal handling turn it off and cancel Run's context instead.
func WithSignals(on bool) Option { return func(o *options) { o.signals = on } }

// WithReadinessCheck adds a named readiness check (a dependency, a queue).
// The watchdog withdraws the instance from discovery when these fail.
func WithReadinessCheck(name string, c health.Check) Option {
	return func(o *options) { o.readiness[name] = c }
}

// WithWatchdog sets how often readiness checks run in the background and
// how many consecutive failures withdraw the instance. failures ≤ 0 turns
// the watchdog off.
func WithWatchdog(interval time.Duration, failures int) Option {
	return func(o *options) { o.watchdogInterval, o.watchdogFailures = interval, failures }
}

// WithMaxBodyBytes sets the request body limit (default 1 MiB).
func WithMaxBodyBytes(n int64) Option { return func(o *options) { o.maxBody = n } }

// WithHTTPMiddleware wraps the service handler (not the health endpoints),
// innermost first; metrics and tracing hook in here.
func WithHTTPMiddleware(mw ...func(http.Handler) http.Handler) Option {
	return func(o *options) { o.middleware = append(o.middleware, mw...) }
}

// WithTLS serves HTTPS with cfg and publishes the instance with scheme
// https, so clients call it over TLS. For mutual TLS set cfg.ClientAuth to
// tls.RequireAndVerifyClientCert and cfg.ClientCAs to the CA that signs the
// callers' certificates: a caller without one is refused in the handshake
// (health endpoints included; probe with `SERVICE healthcheck`, which
// presents the service's own certificate). See docs/security.md.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithSelfCheckTLS sets the TLS configuration of the self-check's request
// to the advertised address. Default: present the server's own
// certificate and do not verify the answer's, since the self-check proves
// who answered with a per-process nonce, not with the certificate.
func WithSelfCheckTLS(cfg *tls.Config) Option { return func(o *options) { o.selfCheckTLS = cfg } }

// WithDebugListener serves h on a listener of its own at addr (port 0
// picks one) from the listen phase until the process ends: /metrics and
// /debug/pprof/* (metrics.Handler). It is not published to discovery; keep
// it on loopback or an admin network. The address is logged in the listen
// phase and returned by App.DebugAddr.
func WithDebugListener(addr string, h http.Handler) Option {
	return func(o *options) { o.debugAddr, o.debugHandler = addr, h }
}

// WithCloser adds something the service owns (a client of another
// service, a database pool) to close in the release phase: after in-flight
// requests have drained, before the registry is closed. Closers run in the
// reverse order they were added.
func WithCloser(c io.Closer) Option { return func(o *options) { o.closers = append(o.closers, c) } }
