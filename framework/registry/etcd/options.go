package etcd

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-kit/log"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
)

// Defaults, chosen so that a lost etcd is noticed within seconds and a lost
// registration is back within one TTL of etcd being reachable again.
const (
	DefaultPrefix           = "warren"
	DefaultTTL              = 10 * time.Second
	DefaultDialTimeout      = 5 * time.Second
	DefaultRequestTimeout   = 5 * time.Second
	DefaultKeepAliveTime    = 10 * time.Second // what grpc-go uses: it raises any shorter interval to 10 s
	DefaultKeepAliveTimeout = 3 * time.Second
	DefaultBackoffMin       = 200 * time.Millisecond
	DefaultBackoffMax       = 5 * time.Second
	DefaultInitialWait      = 3 * time.Second
	DefaultProgressInterval = time.Minute
	DefaultCloseTimeout     = 3 * time.Second
)

// Option configures a Registry.
type Option func(*config)

type config struct {
	endpoints        []string
	dialTimeout      time.Duration
	requestTimeout   time.Duration
	keepAliveTime    time.Duration
	keepAliveTimeout time.Duration
	tls              *tls.Config
	tlsFiles         *transport.TLSInfo
	username         string
	password         string
	prefix           string
	ttl              time.Duration
	logger           log.Logger
	observer         registry.Observer
	backoffMin       time.Duration
	backoffMax       time.Duration
	initialWait      time.Duration
	progressInterval time.Duration
	closeTimeout     time.Duration
	failover         []string // prefixes Instancer falls back to, in order
	reconnectHold    time.Duration
	reconnectHoldSet bool // WithReconnectHold given; else derived from TTL and backoff

	client *clientv3.Client // from WithClient; not closed by the Registry

	// testHookBeforeWatch, when set, runs in an instancer between a full
	// listing and the watch that follows it (tests force compaction there).
	testHookBeforeWatch func()
	// testHookListChunk, when set, is called by an instancer's listing
	// with the record count of each streamed chunk.
	testHookListChunk func(n int)
}

func defaultConfig() config {
	return config{
		endpoints:        []string{"127.0.0.1:2379"},
		dialTimeout:      DefaultDialTimeout,
		requestTimeout:   DefaultRequestTimeout,
		keepAliveTime:    DefaultKeepAliveTime,
		keepAliveTimeout: DefaultKeepAliveTimeout,
		prefix:           DefaultPrefix,
		ttl:              DefaultTTL,
		logger:           log.NewNopLogger(),
		observer:         registry.NopObserver{},
		backoffMin:       DefaultBackoffMin,
		backoffMax:       DefaultBackoffMax,
		initialWait:      DefaultInitialWait,
		progressInterval: DefaultProgressInterval,
		closeTimeout:     DefaultCloseTimeout,
	}
}

// WithEndpoints sets the etcd client endpoints ("host:port" or URLs).
// Default "127.0.0.1:2379".
func WithEndpoints(endpoints ...string) Option {
	return func(c *config) { c.endpoints = endpoints }
}

// WithClient makes the Registry use cli instead of opening its own, so
// several Registries of one process (other key prefixes, say) share one
// connection. The Registry does not close cli; the endpoint, dial, TLS and
// auth options are then ignored.
func WithClient(cli *clientv3.Client) Option { return func(c *config) { c.client = cli } }

// WithDialTimeout bounds establishing a connection. Default 5 s.
func WithDialTimeout(d time.Duration) Option { return func(c *config) { c.dialTimeout = d } }

// WithRequestTimeout bounds each single request (grant, put, get, revoke).
// Default 5 s.
func WithRequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// WithDialKeepAlive sets the gRPC keepalive ping interval and how long to
// wait for its answer, so a half-open connection (peer gone without a FIN)
// is noticed in time+timeout. grpc-go raises an interval under 10 s to
// 10 s (and etcd servers refuse pings more often than every 5 s by
// default). Default 10 s and 3 s.
func WithDialKeepAlive(interval, timeout time.Duration) Option {
	return func(c *config) { c.keepAliveTime, c.keepAliveTimeout = interval, timeout }
}

// WithTLS uses cfg for client connections.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithTLSFiles loads a client certificate and key and a trusted CA bundle
// from files (PEM). Any of them may be empty; New reports a load error.
func WithTLSFiles(caFile, certFile, keyFile string) Option {
	return func(c *config) {
		c.tlsFiles = &transport.TLSInfo{TrustedCAFile: caFile, CertFile: certFile, KeyFile: keyFile}
	}
}

// WithAuth authenticates with etcd's user/password auth.
func WithAuth(username, password string) Option {
	return func(c *config) { c.username, c.password = username, password }
}

// WithPrefix sets the first key segment: keys are
// /<prefix>/services/<name>/<id>. Default "warren". Leading and trailing
// slashes are ignored.
func WithPrefix(p string) Option { return func(c *config) { c.prefix = strings.Trim(p, "/") } }

// WithFailoverPrefixes makes Instancer prefer the Registry's own prefix
// (WithPrefix: one per region, "warren-eu") and fall back to the given
// prefixes (other regions, "warren-us"), in order, while its own has no
// instance of the service, and back as soon as it has one
// (registry.Failover). Registrations stay under the own prefix.
// NewInstancer is unaffected.
func WithFailoverPrefixes(prefixes ...string) Option {
	return func(c *config) {
		c.failover = nil
		for _, p := range prefixes {
			c.failover = append(c.failover, strings.Trim(p, "/"))
		}
	}
}

// WithTTL sets the lease TTL of registrations: how long a dead process
// stays visible. etcd counts in whole seconds (rounded up) and enforces a
// minimum of about 1.5 election timeouts. Default 10 s.
func WithTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// WithLogger sets the go-kit logger for warnings (garbage records, lost
// leases, reconnects). Default (and nil): discard.
func WithLogger(l log.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithObserver reports watch restarts and instance counts of every
// instancer to o (package metrics has a Prometheus one). Default: none.
func WithObserver(o registry.Observer) Option {
	return func(c *config) {
		if o != nil {
			c.observer = o
		}
	}
}

// WithBackoff sets the bounds of the jittered exponential backoff used
// between failed attempts (re-registration, re-listing, reconnecting).
// Default 200 ms to 5 s.
func WithBackoff(lowest, highest time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = lowest, highest }
}

// WithInitialWait bounds how long Instancer waits for the first listing
// before returning with an empty set (which fills when etcd answers).
// Default 3 s; a shorter deadline on the ctx passed to Instancer wins.
func WithInitialWait(d time.Duration) Option { return func(c *config) { c.initialWait = d } }

// WithProgressInterval sets how often an idle instancer asks etcd for a
// watch progress report, to notice a cluster that was replaced or restored
// from a snapshot (new cluster ID, revision gone back). Default 1 min.
func WithProgressInterval(d time.Duration) Option {
	return func(c *config) { c.progressInterval = d }
}

// WithReconnectHold sets how long, after an instancer gets etcd back
// from an outage, it keeps serving its last non-empty set when every
// record of the service is gone: leases that lapsed during the outage
// expire a TTL after etcd returns, a moment before their registrars have
// re-registered, and without the hold callers would see "no endpoints"
// for that moment though every instance is up. Held events carry
// ErrHeldAfterReconnect. The hold ends at the first record that comes
// back or after d. Zero turns it off. Default: TTL + 2 × the highest
// backoff + 1 s, the time a registrar of this configuration takes to
// re-register (one backoff of its own and one of gRPC's reconnect).
func WithReconnectHold(d time.Duration) Option {
	return func(c *config) { c.reconnectHold, c.reconnectHoldSet = d, true }
}

// WithCloseTimeout bounds the lease revocation done by Deregister and
// Close when their ctx has no earlier deadline. Default 3 s.
func WithCloseTimeout(d time.Duration) Option { return func(c *config) { c.closeTimeout = d } }

func (c *config) validate() error {
	switch {
	case len(c.endpoints) == 0:
		return fmt.Errorf("etcd: no endpoints")
	case c.prefix == "" || slices.Contains(c.failover, ""):
		return fmt.Errorf("etcd: empty key prefix")
	case slices.Contains(c.failover, c.prefix):
		return fmt.Errorf("etcd: failover prefix %q is the Registry's own", c.prefix)
	case c.ttl < time.Second:
		return fmt.Errorf("etcd: TTL %s below etcd's 1 s granularity", c.ttl)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("etcd: bad backoff bounds %s..%s", c.backoffMin, c.backoffMax)
	case c.dialTimeout <= 0:
		return fmt.Errorf("etcd: dial timeout %s: must be positive", c.dialTimeout)
	case c.keepAliveTime <= 0 || c.keepAliveTimeout <= 0:
		return fmt.Errorf("etcd: keepalive %s/%s: both must be positive", c.keepAliveTime, c.keepAliveTimeout)
	case c.initialWait <= 0 || c.progressInterval <= 0 || c.requestTimeout <= 0 || c.closeTimeout <= 0:
		return fmt.Errorf("etcd: timeouts and intervals must be positive")
	case c.reconnectHold < 0:
		return fmt.Errorf("etcd: negative reconnect hold %s", c.reconnectHold)
	case c.logger == nil:
		return fmt.Errorf("etcd: nil logger")
	}
	if c.client == nil {
		// clientv3 authenticates only with both; with one it would go on
		// as the certificate's CN (or as nobody), not as the user named.
		switch {
		case c.username != "" && c.password == "":
			return fmt.Errorf("etcd: user %q without a password: WithAuth needs both", c.username)
		case c.username == "" && c.password != "":
			return fmt.Errorf("etcd: a password without a user name: WithAuth needs both")
		}
		// clientv3 takes any string and dials it in vain until every
		// request times out, naming no endpoint: refuse it here.
		for _, ep := range c.endpoints {
			if err := registry.CheckServerAddress(ep); err != nil {
				return fmt.Errorf("etcd: endpoint %q: %w; want host:port or http(s)://host:port", redact.URL(ep), err)
			}
			if c.tls != nil || c.tlsFiles != nil {
				if err := checkSchemeWithTLS(ep); err != nil {
					return fmt.Errorf("etcd: endpoint %w, but TLS is configured (WithTLS, WithTLSFiles) and clientv3 would talk plaintext to it, credentials included; write https://… or a bare host:port", err)
				}
			}
		}
	}
	return nil
}

// holdAfterReconnect is WithReconnectHold's duration, or its default.
func (c *config) holdAfterReconnect() time.Duration {
	if c.reconnectHoldSet {
		return c.reconnectHold
	}
	return c.ttl + 2*c.backoffMax + time.Second
}

// ttlSeconds is the lease TTL in whole seconds, rounded up.
func (c *config) ttlSeconds() int64 {
	return int64((c.ttl + time.Second - 1) / time.Second)
}

// clientConfig builds the configuration of the Registry's one client.
func (c *config) clientConfig() (clientv3.Config, error) {
	tlsCfg := c.tls
	if tlsCfg == nil && c.tlsFiles != nil {
		f := c.tlsFiles
		// etcd's loader names neither the file nor its role ("x509:
		// malformed tbs certificate" for a key given as the CA).
		if err := checkTLSFiles(f.TrustedCAFile, f.CertFile, f.KeyFile, "CA file", "certificate file", "key file"); err != nil {
			return clientv3.Config{}, fmt.Errorf("etcd: load TLS files: %w", err)
		}
		var err error
		if tlsCfg, err = f.ClientConfig(); err != nil {
			return clientv3.Config{}, fmt.Errorf("etcd: load TLS files: %w", err)
		}
	}
	return clientv3.Config{
		Endpoints:            c.endpoints,
		DialTimeout:          c.dialTimeout,
		DialKeepAliveTime:    c.keepAliveTime,
		DialKeepAliveTimeout: c.keepAliveTimeout,
		// PermitWithoutStream stays false: etcd answers pings on a
		// connection without streams with GOAWAY, and our connections always
		// carry a watch or keepalive stream while they matter.
		TLS:      tlsCfg,
		Username: c.username,
		Password: c.password,
		// The client's own zap logging would duplicate ours (and speaks
		// zap); what matters reaches Status, events and the go-kit logger.
		Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{
			// gRPC's default reconnect backoff grows to 120 s; after a long
			// outage that would keep us away from a healthy etcd for minutes.
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: grpcbackoff.Config{
					BaseDelay:  c.backoffMin,
					Multiplier: 1.6,
					Jitter:     0.2,
					MaxDelay:   c.backoffMax,
				},
				MinConnectTimeout: c.dialTimeout,
			}),
		},
	}, nil
}
