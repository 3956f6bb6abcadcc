package zookeeper

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf"
)

// Name is the ZooKeeper backend's name: --registry=zookeeper.
const Name = "zookeeper"

// Backend returns the ZooKeeper backend for a main's list of registries
// (bootstrap.WithRegistries). Its flags, each also a WARREN_ZOOKEEPER_…
// variable: --zookeeper-servers, --zookeeper-root,
// --zookeeper-session-timeout, --zookeeper-username,
// --zookeeper-password, --zookeeper-ca, --zookeeper-cert,
// --zookeeper-key.
func Backend() registry.Backend {
	return registry.Backend{
		Name:  Name,
		Usage: "Apache ZooKeeper (ephemeral znodes and watches)",
		Bind:  bindFlags,
	}
}

type settings struct {
	servers        []string
	root           string
	sessionTimeout time.Duration
	username       string
	password       string
	ca, cert, key  string
}

func bindFlags(fs *flag.FlagSet) registry.Settings {
	s := &settings{
		servers:        []string{"127.0.0.1:2181"},
		root:           DefaultRoot,
		sessionTimeout: DefaultSessionTimeout,
	}
	fs.Var(registry.ListFlag{P: &s.servers}, "zookeeper-servers", "comma-separated ZooKeeper servers (host:port)")
	fs.StringVar(&s.root, "zookeeper-root", s.root, "znode under which services are registered")
	fs.DurationVar(&s.sessionTimeout, "zookeeper-session-timeout", s.sessionTimeout, "ZooKeeper session timeout: how long a dead process stays visible")
	fs.StringVar(&s.username, "zookeeper-username", s.username, "digest auth user; znodes are then writable by this user only")
	fs.StringVar(&s.password, "zookeeper-password", s.password, "digest auth password (prefer the environment variable; never logged)")
	fs.StringVar(&s.ca, "zookeeper-ca", s.ca, "CA certificate file of the servers' secureClientPort (enables TLS)")
	fs.StringVar(&s.cert, "zookeeper-cert", s.cert, "client certificate file (TLS)")
	fs.StringVar(&s.key, "zookeeper-key", s.key, "client key file (TLS)")
	return s
}

func (s *settings) Validate() error {
	switch {
	case len(s.servers) == 0:
		return fmt.Errorf("--zookeeper-servers is empty")
	case s.sessionTimeout < time.Second || s.sessionTimeout > MaxSessionTimeout:
		return fmt.Errorf("--zookeeper-session-timeout %s: %s", s.sessionTimeout, sessionTimeoutWant)
	case s.root == "" || s.root[0] != '/' || s.root == "/" || strings.Contains(s.root, "//") || strings.HasSuffix(s.root, "/"):
		return fmt.Errorf("--zookeeper-root %q: want a znode path like /warren", s.root)
	case reservedRoot(s.root):
		return fmt.Errorf("--zookeeper-root %q: /zookeeper is ZooKeeper's own tree; choose another path", s.root)
	case s.password != "" && s.username == "":
		return fmt.Errorf("--zookeeper-password without --zookeeper-username")
	case (s.cert == "") != (s.key == ""):
		return fmt.Errorf("--zookeeper-cert and --zookeeper-key go together")
	}
	for _, srv := range s.servers {
		if err := validServer(srv); err != nil {
			return fmt.Errorf("--zookeeper-servers: %w", err)
		}
	}
	return nil
}

func (s *settings) Open(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	opts := []Option{
		WithServers(s.servers...),
		WithRoot(s.root),
		WithSessionTimeout(s.sessionTimeout),
		WithLogger(o.Logger),
		WithObserver(o.Observer),
	}
	if s.username != "" {
		opts = append(opts, WithDigestAuth(s.username, s.password))
	}
	if s.ca != "" || s.cert != "" {
		cfg, err := tlsconf.Client(s.ca, s.cert, s.key)
		if err != nil {
			return nil, fmt.Errorf("zookeeper registry: TLS: %w", err)
		}
		opts = append(opts, WithTLS(cfg))
	}
	r, err := New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("zookeeper registry at %v: %w", s.servers, err)
	}
	return r, nil
}

// String shows the settings with the password redacted.
func (s *settings) String() string {
	pw := ""
	if s.password != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("zookeeper{servers=%v root=%s session-timeout=%s username=%q password=%s ca=%q cert=%q key=%q}",
		s.servers, s.root, s.sessionTimeout, s.username, pw, s.ca, s.cert, s.key)
}
