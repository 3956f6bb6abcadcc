package etcd

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
)

// Name is the etcd backend's name: --registry=etcd.
const Name = "etcd"

// Backend returns the etcd backend for a main's list of registries
// (bootstrap.WithRegistries). Its flags, each also a WARREN_ETCD_…
// variable: --etcd-endpoints, --etcd-prefix, --etcd-failover-prefixes, --etcd-ttl,
// --etcd-dial-timeout, --etcd-request-timeout, --etcd-ca, --etcd-cert, --etcd-key,
// --etcd-username, --etcd-password.
func Backend() registry.Backend {
	return registry.Backend{
		Name:  Name,
		Usage: "etcd v3 (leases and watches)",
		Bind:  bindFlags,
	}
}

// settings are the etcd backend's flags.
type settings struct {
	endpoints   []string
	prefix      string
	failover    []string
	ttl         time.Duration
	dialTimeout time.Duration
	reqTimeout  time.Duration
	ca          string
	cert        string
	key         string
	username    string
	password    string
}

func bindFlags(fs *flag.FlagSet) registry.Settings {
	s := &settings{
		endpoints:   []string{"127.0.0.1:2379"},
		prefix:      DefaultPrefix,
		ttl:         DefaultTTL,
		dialTimeout: DefaultDialTimeout,
		reqTimeout:  DefaultRequestTimeout,
	}
	fs.Var(registry.ListFlag{P: &s.endpoints}, "etcd-endpoints", "comma-separated etcd endpoints")
	fs.StringVar(&s.prefix, "etcd-prefix", s.prefix, "etcd key prefix (one per region for regional failover)")
	fs.Var(registry.ListFlag{P: &s.failover}, "etcd-failover-prefixes", "prefixes (other regions) to discover instances under, in order, while the own prefix has none")
	fs.DurationVar(&s.ttl, "etcd-ttl", s.ttl, "etcd lease TTL: how long a dead process stays visible")
	fs.DurationVar(&s.dialTimeout, "etcd-dial-timeout", s.dialTimeout, "etcd dial timeout")
	fs.DurationVar(&s.reqTimeout, "etcd-request-timeout", s.reqTimeout, "bound on one etcd request attempt; on a cluster about 2x the election timeout, so an attempt stuck on a member that lost its leader is retried on another soon")
	fs.StringVar(&s.ca, "etcd-ca", s.ca, "etcd CA certificate file (enables TLS)")
	fs.StringVar(&s.cert, "etcd-cert", s.cert, "etcd client certificate file")
	fs.StringVar(&s.key, "etcd-key", s.key, "etcd client key file")
	fs.StringVar(&s.username, "etcd-username", s.username, "etcd user name")
	fs.StringVar(&s.password, "etcd-password", s.password, "etcd password (prefer the environment variable; never logged)")
	return s
}

func (s *settings) Validate() error {
	switch {
	case len(s.endpoints) == 0:
		return fmt.Errorf("--etcd-endpoints is empty")
	case s.ttl < time.Second:
		return fmt.Errorf("--etcd-ttl %s: must be at least 1s", s.ttl)
	case s.dialTimeout <= 0:
		return fmt.Errorf("--etcd-dial-timeout %s: must be positive", s.dialTimeout)
	case s.reqTimeout <= 0:
		return fmt.Errorf("--etcd-request-timeout %s: must be positive", s.reqTimeout)
	case (s.cert == "") != (s.key == ""):
		return fmt.Errorf("--etcd-cert and --etcd-key go together")
	case s.username != "" && s.password == "":
		// clientv3 authenticates only with both: the service would run as
		// its certificate's CN (or unauthenticated), not as the user named.
		return fmt.Errorf("--etcd-username %q without --etcd-password (WARREN_ETCD_PASSWORD): they go together", s.username)
	case s.username == "" && s.password != "":
		return fmt.Errorf("--etcd-password (WARREN_ETCD_PASSWORD) without --etcd-username: they go together")
	}
	own := strings.Trim(s.prefix, "/")
	if own == "" { // New's "etcd: empty key prefix", exit 1, did not name the flag
		return fmt.Errorf("--etcd-prefix %q: want a key prefix such as warren (slashes alone are none)", s.prefix)
	}
	for _, p := range s.failover {
		switch strings.Trim(p, "/") {
		case "":
			return fmt.Errorf("--etcd-failover-prefixes: an empty prefix")
		case own:
			return fmt.Errorf("--etcd-failover-prefixes: %q is the own --etcd-prefix; list the other regions' prefixes", p)
		}
	}
	for _, ep := range s.endpoints {
		if err := registry.CheckServerAddress(ep); err != nil {
			return fmt.Errorf("--etcd-endpoints: %q: %w; want host:port or http(s)://host:port", redact.URL(ep), err)
		}
		if s.ca != "" || s.cert != "" {
			if err := checkSchemeWithTLS(ep); err != nil {
				return fmt.Errorf("--etcd-endpoints: %w, but --etcd-ca or --etcd-cert asks for TLS; write https://… or a bare host:port", err)
			}
		}
	}
	return nil
}

func (s *settings) Open(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	opts := []Option{
		WithEndpoints(s.endpoints...),
		WithPrefix(s.prefix),
		WithFailoverPrefixes(s.failover...),
		WithTTL(s.ttl),
		WithDialTimeout(s.dialTimeout),
		WithRequestTimeout(s.reqTimeout),
		WithLogger(o.Logger),
		WithObserver(o.Observer),
	}
	if s.ca != "" || s.cert != "" {
		// Checked here, where the flags' names are known: etcd's own
		// loader says "x509: malformed tbs certificate", naming nothing.
		if err := checkTLSFiles(s.ca, s.cert, s.key, "--etcd-ca", "--etcd-cert", "--etcd-key"); err != nil {
			return nil, fmt.Errorf("etcd registry: %w", err)
		}
		opts = append(opts, WithTLSFiles(s.ca, s.cert, s.key))
	}
	if s.username != "" {
		opts = append(opts, WithAuth(s.username, s.password))
	}
	r, err := New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("etcd registry at %v: %w", redact.URLs(s.endpoints), err)
	}
	return r, nil
}

// String shows the settings with the password redacted, so logging a
// configuration never leaks it.
func (s *settings) String() string {
	pw := ""
	if s.password != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("etcd{endpoints=%v prefix=%s failover-prefixes=%v ttl=%s dial-timeout=%s request-timeout=%s ca=%q cert=%q key=%q username=%q password=%s}",
		redact.URLs(s.endpoints), s.prefix, s.failover, s.ttl, s.dialTimeout, s.reqTimeout, s.ca, s.cert, s.key, s.username, pw)
}
