package consul

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// Name is the Consul backend's name: --registry=consul.
const Name = "consul"

// Backend returns the Consul backend for a main's list of registries
// (bootstrap.WithRegistries). Its flags, each also a WARREN_CONSUL_…
// variable: --consul-addr, --consul-token, --consul-datacenter,
// --consul-check, --consul-ttl, --consul-ca, --consul-cert, --consul-key.
func Backend() registry.Backend {
	return registry.Backend{
		Name:  Name,
		Usage: "the local Consul agent (health-checked services)",
		Bind:  bindFlags,
	}
}

// settings are the Consul backend's flags.
type settings struct {
	addr       string
	token      string
	datacenter string
	check      string // ttl or http
	ttl        time.Duration
	ca         string
	cert       string
	key        string
}

func bindFlags(fs *flag.FlagSet) registry.Settings {
	s := &settings{addr: "127.0.0.1:8500", check: "ttl", ttl: 10 * time.Second}
	fs.StringVar(&s.addr, "consul-addr", s.addr, "Consul agent address host:port or URL")
	fs.StringVar(&s.token, "consul-token", s.token, "Consul ACL token (prefer the environment variable; never logged)")
	fs.StringVar(&s.datacenter, "consul-datacenter", s.datacenter, "Consul datacenter (default: the agent's)")
	fs.StringVar(&s.check, "consul-check", s.check, "Consul health check: ttl (heartbeat from readiness) or http (agent polls /healthz)")
	fs.DurationVar(&s.ttl, "consul-ttl", s.ttl, "Consul TTL check period")
	fs.StringVar(&s.ca, "consul-ca", s.ca, "Consul CA certificate file (enables HTTPS)")
	fs.StringVar(&s.cert, "consul-cert", s.cert, "Consul client certificate file")
	fs.StringVar(&s.key, "consul-key", s.key, "Consul client key file")
	return s
}

func (s *settings) Validate() error {
	switch {
	case s.addr == "":
		return fmt.Errorf("--consul-addr is empty")
	case s.check != "ttl" && s.check != "http":
		return fmt.Errorf("--consul-check %q: want ttl or http", s.check)
	case s.ttl < time.Second:
		return fmt.Errorf("--consul-ttl %s: must be at least 1s", s.ttl)
	case (s.cert == "") != (s.key == ""):
		return fmt.Errorf("--consul-cert and --consul-key go together")
	}
	return nil
}

func (s *settings) Open(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	opts := []Option{
		WithAddress(s.addr),
		WithLogger(o.Logger),
		WithObserver(o.Observer),
	}
	if s.token != "" {
		opts = append(opts, WithToken(s.token))
	}
	if s.datacenter != "" {
		opts = append(opts, WithDatacenter(s.datacenter))
	}
	if s.ca != "" || s.cert != "" {
		opts = append(opts, WithTLS(TLSConfig{CAFile: s.ca, CertFile: s.cert, KeyFile: s.key}))
	}
	if s.check == "http" {
		opts = append(opts, WithHTTPCheck(s.ttl, s.ttl/2))
	} else {
		opts = append(opts, WithTTLCheck(s.ttl))
	}
	r, err := New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("consul registry at %s: %w", s.addr, err)
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
	return fmt.Sprintf("consul{addr=%s token=%s datacenter=%q check=%s ttl=%s ca=%q cert=%q key=%q}",
		s.addr, tok, s.datacenter, s.check, s.ttl, s.ca, s.cert, s.key)
}
