package consul

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
)

// Name is the Consul backend's name: --registry=consul.
const Name = "consul"

// Backend returns the Consul backend for a main's list of registries
// (bootstrap.WithRegistries). Its flags, each also a WARREN_CONSUL_…
// variable: --consul-addr (several, comma-separated: own agent first),
// --consul-failover-datacenters, --consul-token, --consul-datacenter,
// --consul-check, --consul-ttl, --consul-check-interval,
// --consul-check-timeout, --consul-deregister-critical-after,
// --consul-check-tls-server-name, --consul-check-tls-skip-verify,
// --consul-allow-stale, --consul-ca, --consul-cert, --consul-key.
func Backend() registry.Backend {
	return registry.Backend{
		Name:  Name,
		Usage: "the local Consul agent (health-checked services)",
		Bind:  bindFlags,
	}
}

// settings are the Consul backend's flags.
type settings struct {
	addrs      []string
	failover   []string
	token      string
	datacenter string
	check      string // list of ttl, http, tcp, grpc
	ttl        time.Duration
	interval   time.Duration // http, tcp, grpc checks
	timeout    time.Duration
	deregAfter time.Duration
	checkTLS   CheckTLS
	allowStale bool
	ca         string
	cert       string
	key        string
}

func bindFlags(fs *flag.FlagSet) registry.Settings {
	s := &settings{addrs: []string{"127.0.0.1:8500"}, check: "ttl", ttl: DefaultCheckTTL,
		interval: DefaultCheckInterval, timeout: DefaultCheckTimeout, deregAfter: time.Minute}
	fs.Var(registry.ListFlag{P: &s.addrs}, "consul-addr", "Consul agent addresses host:port or URL, comma-separated: the service's own agent first, then agents to fail over to")
	fs.Var(registry.ListFlag{P: &s.failover}, "consul-failover-datacenters", "datacenters to discover instances in, in order, while the local one has no passing instance")
	fs.StringVar(&s.token, "consul-token", s.token, "Consul ACL token (prefer the environment variable; never logged)")
	fs.StringVar(&s.datacenter, "consul-datacenter", s.datacenter, "Consul datacenter (default: the agent's)")
	fs.StringVar(&s.check, "consul-check", s.check, "Consul health checks, comma-separated: ttl (heartbeat from readiness), http (agent GETs /healthz), tcp (agent connects), grpc (agent asks grpc.health.v1)")
	fs.DurationVar(&s.ttl, "consul-ttl", s.ttl, "Consul TTL check period")
	fs.DurationVar(&s.interval, "consul-check-interval", s.interval, "how often the agent runs http, tcp and grpc checks")
	fs.DurationVar(&s.timeout, "consul-check-timeout", s.timeout, "how long one http, tcp or grpc check may take")
	fs.DurationVar(&s.deregAfter, "consul-deregister-critical-after", s.deregAfter, "Consul removes an instance whose check stayed critical this long (0: never)")
	fs.StringVar(&s.checkTLS.ServerName, "consul-check-tls-server-name", s.checkTLS.ServerName, "name the agent verifies in the instance's certificate in https and grpcs checks (default: the host it dials)")
	fs.BoolVar(&s.checkTLS.SkipVerify, "consul-check-tls-skip-verify", s.checkTLS.SkipVerify, "let https and grpcs checks accept any certificate")
	fs.BoolVar(&s.allowStale, "consul-allow-stale", s.allowStale, "let any Consul server answer discovery queries, not only the leader: spreads the load and answers during an election, up to a few hundred ms behind")
	fs.StringVar(&s.ca, "consul-ca", s.ca, "Consul CA certificate file (enables HTTPS)")
	fs.StringVar(&s.cert, "consul-cert", s.cert, "Consul client certificate file")
	fs.StringVar(&s.key, "consul-key", s.key, "Consul client key file")
	return s
}

func (s *settings) Validate() error {
	switch {
	case len(s.addrs) == 0:
		return fmt.Errorf("--consul-addr is empty")
	case s.ttl < time.Second:
		return fmt.Errorf("--consul-ttl %s: must be at least 1s", s.ttl)
	case s.interval < time.Second:
		return fmt.Errorf("--consul-check-interval %s: must be at least 1s (Consul runs checks at most once a second)", s.interval)
	case s.timeout <= 0 || s.timeout > s.interval:
		return fmt.Errorf("--consul-check-timeout %s: must be above 0 and at most --consul-check-interval (%s)", s.timeout, s.interval)
	case s.deregAfter < 0:
		return fmt.Errorf("--consul-deregister-critical-after %s: must not be negative", s.deregAfter)
	case s.datacenter != "" && slices.Contains(s.failover, s.datacenter):
		return fmt.Errorf("--consul-failover-datacenters: %q is the own --consul-datacenter; list the other datacenters", s.datacenter)
	case slices.Contains(s.failover, ""):
		return fmt.Errorf("--consul-failover-datacenters: an empty datacenter name")
	case (s.cert == "") != (s.key == ""):
		return fmt.Errorf("--consul-cert and --consul-key go together")
	}
	if _, err := s.checks(); err != nil {
		return fmt.Errorf("--consul-check %q: %w", s.check, err)
	}
	// As New does, but as a configuration error naming the flag; the
	// address is masked, its user information may be a password.
	for _, addr := range s.addrs {
		if err := registry.CheckServerAddress(addr); err != nil {
			return fmt.Errorf("--consul-addr: %q: %w; want host:port or http(s)://host:port (the token goes in --consul-token or WARREN_CONSUL_TOKEN)", redact.URL(addr), err)
		}
	}
	return nil
}

// checks is the check list the flags describe.
func (s *settings) checks() ([]Check, error) {
	return ChecksFor(s.check, s.ttl, s.interval, s.timeout, s.checkTLS)
}

func (s *settings) Open(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	opts := []Option{
		WithAddresses(s.addrs...),
		WithLogger(o.Logger),
		WithObserver(o.Observer),
	}
	if s.token != "" {
		opts = append(opts, WithToken(s.token))
	}
	if s.datacenter != "" {
		opts = append(opts, WithDatacenter(s.datacenter))
	}
	if s.allowStale {
		opts = append(opts, WithAllowStale(true))
	}
	if len(s.failover) > 0 {
		opts = append(opts, WithFailover(s.failover...))
	}
	if s.ca != "" || s.cert != "" {
		opts = append(opts, WithTLS(TLSConfig{CAFile: s.ca, CertFile: s.cert, KeyFile: s.key}))
	}
	checks, err := s.checks()
	if err != nil {
		return nil, fmt.Errorf("consul registry: --consul-check %q: %w", s.check, err)
	}
	opts = append(opts, WithChecks(checks...), WithDeregisterCriticalAfter(s.deregAfter))
	r, err := New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("consul registry at %s: %w", strings.Join(redact.URLs(s.addrs), ","), err)
	}
	return r, nil
}

// String shows the settings with the token redacted, so logging a
// configuration never leaks it.
func (s *settings) String() string {
	tok := ""
	if s.token != "" {
		tok = "(set)"
	}
	return fmt.Sprintf("consul{addr=%s failover-datacenters=%s token=%s datacenter=%q check=%s ttl=%s interval=%s timeout=%s deregister-critical-after=%s check-tls=%+v allow-stale=%t ca=%q cert=%q key=%q}",
		strings.Join(redact.URLs(s.addrs), ","), strings.Join(s.failover, ","), tok, s.datacenter, s.check, s.ttl, s.interval, s.timeout, s.deregAfter, s.checkTLS, s.allowStale, s.ca, s.cert, s.key)
}
