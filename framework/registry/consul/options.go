package consul

import (
	"net/http"
	"slices"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
)

// DefaultInitialWait bounds how long NewInstancer and Instancer wait for the
// agent's first answer, the same default as the other backends'.
const DefaultInitialWait = 3 * time.Second

// Option configures a Registry built by New.
type Option func(*config)

// config is everything New and NewInstancer read. Zero values are replaced
// by the defaults in defaultConfig.
type config struct {
	addresses  []string // host:port, or scheme://host:port; the first is home
	scheme     string
	datacenter string
	token      string
	tls        TLSConfig
	logger     log.Logger
	observer   registry.Observer
	wrapRT     func(http.RoundTripper) http.RoundTripper

	checks         []Check
	healthPath     string // WithHealthPath: applied by New to HTTP checks without a Path
	deregCritical  time.Duration
	deregTimeout   time.Duration
	requestTimeout time.Duration

	waitTime    time.Duration
	initialWait time.Duration // NewInstancer's bound on the first answer
	allowStale  bool
	queryRate   float64 // blocking queries per second, per instancer
	queryBurst  int

	backoffMin time.Duration
	backoffMax time.Duration

	failover []string // datacenters Instancer falls back to, in order
}

func defaultConfig() config {
	return config{
		addresses:      []string{"127.0.0.1:8500"},
		logger:         log.NewNopLogger(),
		observer:       registry.NopObserver{},
		checks:         []Check{{Kind: CheckTTL}},
		deregCritical:  time.Minute,
		deregTimeout:   5 * time.Second,
		requestTimeout: 5 * time.Second,
		waitTime:       time.Minute,
		initialWait:    DefaultInitialWait,
		queryRate:      10,
		queryBurst:     5,
		backoffMin:     100 * time.Millisecond,
		backoffMax:     10 * time.Second,
	}
}

// TLSConfig holds the files used to talk to the agent over HTTPS. Setting
// any of them switches the scheme to https.
type TLSConfig struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the agent's certificate.
	ServerName         string
	InsecureSkipVerify bool
}

// WithAddress sets the agent's HTTP address, "host:port" or
// "https://host:port". Default 127.0.0.1:8500.
func WithAddress(addr string) Option { return func(c *config) { c.addresses = []string{addr} } }

// WithAddresses sets several agents' HTTP addresses. The first is the
// service's own agent (its home): registrations live there while it
// answers. When it cannot be reached they move to the next agent that
// answers and come back home once it does; instancers query whichever
// agent answers. See docs/registry-consul.md, "Several agents".
func WithAddresses(addrs ...string) Option {
	return func(c *config) { c.addresses = slices.Clone(addrs) }
}

// WithScheme sets "http" or "https" for the agent's HTTP API.
func WithScheme(scheme string) Option { return func(c *config) { c.scheme = scheme } }

// WithDatacenter sets the datacenter discovery queries go to (and
// Client's); NewInstancer can override it per service with Datacenter.
// Registration always goes to the agent's own datacenter: the agent API
// registers locally, so the registrar's checks that the servers list and
// then drop its registrations ask that datacenter too. Register fails with
// ErrUnknownDatacenter when the agent lists datacenters, none of them dc.
func WithDatacenter(dc string) Option { return func(c *config) { c.datacenter = dc } }

// WithToken sets the ACL token sent with every request.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithTLS enables HTTPS to the agent with the given CA, client certificate
// and key.
func WithTLS(t TLSConfig) Option {
	return func(c *config) {
		c.tls = t
		c.scheme = "https"
	}
}

// WithLogger sets the logger for background work (re-registration, query
// errors). Default: no logging.
func WithLogger(l log.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithObserver reports restarts of the blocking-query loops and instance
// counts of every instancer to o (package metrics has a Prometheus one).
// Default: none.
func WithObserver(o registry.Observer) Option {
	return func(c *config) {
		if o != nil {
			c.observer = o
		}
	}
}

// WithTransport wraps the HTTP transport used for every agent call, e.g. to
// count or trace requests.
func WithTransport(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *config) { c.wrapRT = wrap }
}

// WithChecks sets the checks registered with every instance, replacing
// the default single TTL check. Each kind may appear once; a zero field
// takes its default (see Check). With a TTL check among them the Registry
// heartbeats it; without one it polls the agent every (shortest) check
// interval to re-register an instance the agent has forgotten.
func WithChecks(checks ...Check) Option {
	return func(c *config) { c.checks = slices.Clone(checks) }
}

// WithTTLCheck registers instances with one TTL check of the given TTL (the
// default, 10s; 0 takes it, a negative TTL fails New). The Registry updates it every ttl/3 with the service's
// readiness (see UseReadiness). Shorthand for WithChecks(Check{Kind:
// CheckTTL, TTL: ttl}).
func WithTTLCheck(ttl time.Duration) Option {
	return WithChecks(Check{Kind: CheckTTL, TTL: ttl})
}

// WithHTTPCheck registers instances with one HTTP check that the agent runs
// against the instance's HTTP endpoint + "/healthz" every interval, failing
// after timeout. Shorthand for WithChecks(Check{Kind: CheckHTTP, ...}).
func WithHTTPCheck(interval, timeout time.Duration) Option {
	return WithChecks(Check{Kind: CheckHTTP, Interval: interval, Timeout: timeout})
}

// WithHealthPath changes the path of HTTP checks that set none (default
// "/healthz").
func WithHealthPath(path string) Option { return func(c *config) { c.healthPath = path } }

// WithDeregisterCriticalAfter sets DeregisterCriticalServiceAfter: how long
// Consul keeps a critical instance before removing it (default 1m; Consul
// reaps at most every 30s, so shorter values are rounded up in practice).
func WithDeregisterCriticalAfter(d time.Duration) Option {
	return func(c *config) { c.deregCritical = d }
}

// WithDeregisterTimeout bounds Deregister and the deregistrations made by
// Close (default 5s).
func WithDeregisterTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.deregTimeout = d
		}
	}
}

// WithRequestTimeout bounds every non-blocking agent call (default 5s).
// Blocking queries get the wait time plus this.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.requestTimeout = d
		}
	}
}

// WithWaitTime sets how long one blocking query may wait for a change
// (default 1m; Consul caps it at 10m).
func WithWaitTime(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.waitTime = d
		}
	}
}

// WithInitialWait bounds how long NewInstancer and Instancer wait for the
// agent's first answer before returning without it (default
// DefaultInitialWait, 3 s; 0 returns at once; negative is ignored). A
// shorter deadline on the ctx passed to them wins. Returning without an
// answer is no error: the first event follows when the query ends.
func WithInitialWait(d time.Duration) Option {
	return func(c *config) {
		if d >= 0 {
			c.initialWait = d
		}
	}
}

// WithFailover makes Instancer prefer the local datacenter (the agent's, or
// WithDatacenter's) and fall back to dcs, in order, while the local one
// has no passing instance of the service, and back as soon as it has one
// (registry.Failover over one blocking query per datacenter; instances
// carry their datacenter in Metadata["dc"]). The datacenters must be
// joined over the WAN: Register fails with ErrUnknownDatacenter when the
// agent lists datacenters, not all of dcs. NewInstancer is unaffected.
func WithFailover(dcs ...string) Option {
	return func(c *config) { c.failover = slices.Clone(dcs) }
}

// WithAllowStale lets any server, not only the leader, answer discovery
// queries: more scalable, possibly slightly behind.
func WithAllowStale(stale bool) Option { return func(c *config) { c.allowStale = stale } }

// WithQueryRate limits, per instancer, the queries that follow an answer
// without a change (the wait ran out, an error, an index that did not move,
// went backwards or was 0) to perSecond, with the given burst (default
// 10/s, burst 5), so no answer of the agent can make the instancer spin.
// The query that follows an answer with a new index is never delayed: a
// change that comes right after another reaches subscribers as fast as the
// first.
func WithQueryRate(perSecond float64, burst int) Option {
	return func(c *config) {
		if perSecond > 0 {
			c.queryRate = perSecond
		}
		if burst > 0 {
			c.queryBurst = burst
		}
	}
}

// WithRetryBackoff sets the bounds of the jittered exponential backoff used
// after failed agent calls (default 100ms..10s). Heartbeat retries are also
// capped at TTL/3 so a restarted agent sees the instance again within a TTL.
func WithRetryBackoff(minDelay, maxDelay time.Duration) Option {
	return func(c *config) {
		if minDelay > 0 {
			c.backoffMin = minDelay
		}
		if maxDelay >= c.backoffMin {
			c.backoffMax = maxDelay
		}
	}
}

// InstancerOption configures one instancer made by NewInstancer.
type InstancerOption func(*instancerConfig)

type instancerConfig struct {
	tags       []string
	datacenter string
	allowStale bool
}

// Tags keeps only instances carrying every one of tags.
func Tags(tags ...string) InstancerOption {
	return func(c *instancerConfig) { c.tags = append(c.tags, tags...) }
}

// Datacenter discovers instances in dc instead of the Registry's datacenter.
func Datacenter(dc string) InstancerOption {
	return func(c *instancerConfig) { c.datacenter = dc }
}

// AllowStale overrides WithAllowStale for one instancer.
func AllowStale(stale bool) InstancerOption {
	return func(c *instancerConfig) { c.allowStale = stale }
}
