package consul

import (
	"net/http"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
)

// Option configures a Registry built by New.
type Option func(*config)

// CheckKind says how Consul learns that an instance is healthy.
type CheckKind int

const (
	// CheckTTL is a TTL check: the Registry reports the service's readiness
	// to the agent every TTL/3. A frozen process stops reporting and its
	// instance turns critical after one TTL.
	CheckTTL CheckKind = iota
	// CheckHTTP is an HTTP check: the agent itself GETs the instance's
	// /healthz every interval.
	CheckHTTP
)

// config is everything New and NewInstancer read. Zero values are replaced
// by the defaults in defaultConfig.
type config struct {
	address    string // host:port, or scheme://host:port
	scheme     string
	datacenter string
	token      string
	tls        TLSConfig
	logger     log.Logger
	observer   registry.Observer
	wrapRT     func(http.RoundTripper) http.RoundTripper

	check          CheckKind
	ttl            time.Duration
	httpInterval   time.Duration
	httpTimeout    time.Duration
	healthPath     string
	deregCritical  time.Duration
	deregTimeout   time.Duration
	requestTimeout time.Duration

	waitTime   time.Duration
	allowStale bool
	queryRate  float64 // blocking queries per second, per instancer
	queryBurst int

	backoffMin time.Duration
	backoffMax time.Duration
}

func defaultConfig() config {
	return config{
		address:        "127.0.0.1:8500",
		logger:         log.NewNopLogger(),
		observer:       registry.NopObserver{},
		check:          CheckTTL,
		ttl:            10 * time.Second,
		httpInterval:   10 * time.Second,
		httpTimeout:    2 * time.Second,
		healthPath:     "/healthz",
		deregCritical:  time.Minute,
		deregTimeout:   5 * time.Second,
		requestTimeout: 5 * time.Second,
		waitTime:       time.Minute,
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
func WithAddress(addr string) Option { return func(c *config) { c.address = addr } }

// WithScheme sets "http" or "https" for the agent's HTTP API.
func WithScheme(scheme string) Option { return func(c *config) { c.scheme = scheme } }

// WithDatacenter sets the datacenter every request goes to; NewInstancer can
// override it per service with Datacenter.
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

// WithTTLCheck registers instances with a TTL check of the given TTL (the
// default, 10s). The Registry updates it every ttl/3 with the service's
// readiness (see UseReadiness).
func WithTTLCheck(ttl time.Duration) Option {
	return func(c *config) {
		c.check = CheckTTL
		if ttl > 0 {
			c.ttl = ttl
		}
	}
}

// WithHTTPCheck registers instances with an HTTP check that the agent runs
// against BaseURL()+"/healthz" every interval, failing after timeout. The
// Registry then polls the agent every interval to re-register the service
// if the agent has forgotten it.
func WithHTTPCheck(interval, timeout time.Duration) Option {
	return func(c *config) {
		c.check = CheckHTTP
		if interval > 0 {
			c.httpInterval = interval
		}
		if timeout > 0 {
			c.httpTimeout = timeout
		}
	}
}

// WithHealthPath changes the path of the HTTP check (default "/healthz").
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
