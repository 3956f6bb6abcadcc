package zookeeper

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
	"github.com/warren-mesh/warren/internal/zk"
)

// Defaults, chosen like etcd's: a dead process leaves discovery within one
// session timeout, a lost registration is back within a backoff step of
// ZooKeeper being reachable again.
const (
	DefaultRoot           = "/warren"
	DefaultSessionTimeout = 10 * time.Second
	DefaultConnectTimeout = 2 * time.Second
	DefaultBackoffMin     = 200 * time.Millisecond
	DefaultBackoffMax     = 5 * time.Second
	DefaultInitialWait    = 3 * time.Second
	DefaultCloseTimeout   = 3 * time.Second
)

// MaxSessionTimeout is the longest session timeout the client can ask for:
// ZooKeeper takes it in int32 milliseconds (596h31m23.647s). A longer one
// overflowed to a negative timeout, and every connection attempt then
// failed "zk: could not connect to a server" against a healthy server
// (report j53d finding 4). Servers clamp the timeout to their
// maxSessionTimeout anyway (40 s by default).
const MaxSessionTimeout = math.MaxInt32 * time.Millisecond

// Option configures a Registry.
type Option func(*config)

type config struct {
	servers        []string
	root           string
	sessionTimeout time.Duration
	connectTimeout time.Duration
	username       string
	password       string
	acl            []zk.ACL
	tls            *tls.Config
	logger         log.Logger
	observer       registry.Observer
	backoffMin     time.Duration
	backoffMax     time.Duration
	initialWait    time.Duration
	closeTimeout   time.Duration
}

func defaultConfig() config {
	return config{
		servers:        []string{"127.0.0.1:2181"},
		root:           DefaultRoot,
		sessionTimeout: DefaultSessionTimeout,
		connectTimeout: DefaultConnectTimeout,
		logger:         log.NewNopLogger(),
		observer:       registry.NopObserver{},
		backoffMin:     DefaultBackoffMin,
		backoffMax:     DefaultBackoffMax,
		initialWait:    DefaultInitialWait,
		closeTimeout:   DefaultCloseTimeout,
	}
}

// WithServers sets the ensemble's client addresses ("host:port"; a
// missing port means 2181). Default "127.0.0.1:2181".
func WithServers(servers ...string) Option { return func(c *config) { c.servers = servers } }

// WithRoot sets the znode under which services live:
// <root>/services/<name>/<id>. Default "/warren".
func WithRoot(root string) Option {
	return func(c *config) { c.root = "/" + strings.Trim(root, "/") }
}

// WithSessionTimeout sets the session timeout the client asks for: how
// long a dead process's ephemeral znodes outlive it. The server clamps it
// to its minSessionTimeout..maxSessionTimeout (2 and 20 ticks by
// default). Default 10 s; from 1 s to MaxSessionTimeout.
func WithSessionTimeout(d time.Duration) Option { return func(c *config) { c.sessionTimeout = d } }

// WithConnectTimeout bounds one TCP connect to a server. Default 2 s.
func WithConnectTimeout(d time.Duration) Option { return func(c *config) { c.connectTimeout = d } }

// WithDigestAuth authenticates the session with ZooKeeper's digest scheme
// (user:password, re-sent on every reconnect) and, unless WithACL says
// otherwise, creates every znode with the ACL "this user may do anything,
// everyone may read": other processes discover the service without
// credentials, and only this user can change or delete its records. The
// shared parents (<root>, <root>/services) get that ACL too when this
// Registry creates them, so another user is refused creating its service
// beside them: give every service of the mesh the same user, or have an
// operator create the parents first with create granted to each
// service's user (docs/registry-zookeeper.md, Digest auth).
func WithDigestAuth(username, password string) Option {
	return func(c *config) { c.username, c.password = username, password }
}

// WithACL sets the ACL of every znode the Registry creates (the parents
// and the records). Default: world:anyone with all permissions, or with
// WithDigestAuth, the user's digest with all permissions and world read.
// The values are github.com/go-zookeeper/zk's ACL (zk.WorldACL,
// zk.DigestACL).
func WithACL(acl ...zk.ACL) Option { return func(c *config) { c.acl = acl } }

// WithTLS connects over TLS (ZooKeeper's secureClientPort, served by its
// Netty connection factory).
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithLogger sets the go-kit logger for warnings (lost sessions,
// re-registrations, skipped records). Default (and nil): discard.
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

// WithBackoff sets the bounds of the jittered exponential backoff between
// failed attempts (re-registration, re-reading). Default 200 ms to 5 s.
func WithBackoff(lowest, highest time.Duration) Option {
	return func(c *config) { c.backoffMin, c.backoffMax = lowest, highest }
}

// WithInitialWait bounds how long Instancer waits for the first listing
// before returning with an empty set and an error event (the set fills
// when ZooKeeper answers). Default 3 s; a sooner deadline on Instancer's
// ctx wins.
func WithInitialWait(d time.Duration) Option { return func(c *config) { c.initialWait = d } }

// WithCloseTimeout bounds Deregister's delete (a sooner ctx deadline
// wins) and the whole of Close, also while ZooKeeper is silent. Default
// 3 s.
func WithCloseTimeout(d time.Duration) Option { return func(c *config) { c.closeTimeout = d } }

// sessionTimeoutWant is what a session timeout out of range is told.
const sessionTimeoutWant = "want from 1s to 596h31m23s (ZooKeeper takes it in int32 milliseconds; servers clamp it to their maxSessionTimeout, 40s by default)"

func (c *config) validate() error {
	switch {
	case len(c.servers) == 0:
		return fmt.Errorf("zookeeper: no servers")
	case c.root == "/" || strings.Contains(c.root, "//"):
		return fmt.Errorf("zookeeper: root %q: want a znode path like /warren", c.root)
	case reservedRoot(c.root):
		return fmt.Errorf("zookeeper: root %q: /zookeeper is ZooKeeper's own tree; choose another path", c.root)
	case c.sessionTimeout < time.Second || c.sessionTimeout > MaxSessionTimeout:
		return fmt.Errorf("zookeeper: session timeout %s: %s", c.sessionTimeout, sessionTimeoutWant)
	case c.backoffMin <= 0 || c.backoffMax < c.backoffMin:
		return fmt.Errorf("zookeeper: bad backoff bounds %s..%s", c.backoffMin, c.backoffMax)
	case c.connectTimeout <= 0 || c.initialWait <= 0 || c.closeTimeout <= 0:
		return fmt.Errorf("zookeeper: timeouts must be positive")
	case c.username == "" && c.password != "":
		return fmt.Errorf("zookeeper: a digest password without a user name")
	}
	for _, s := range c.servers {
		if err := validServer(s); err != nil {
			return fmt.Errorf("zookeeper: %w", err)
		}
	}
	return nil
}

// reservedRoot reports a root inside /zookeeper, the server's own tree.
func reservedRoot(root string) bool {
	return root == "/zookeeper" || strings.HasPrefix(root, "/zookeeper/")
}

// validServer checks one ensemble member's address: host:port. A Java
// connect string's chroot ("zk1:2181,zk2:2181/app") would otherwise be
// part of the last address, which then never connects, while the others
// register outside the chroot the Java services read (report j47b).
func validServer(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("empty server address")
	}
	if i := strings.Index(s, "://"); i >= 0 {
		// Before the chroot: "http://zk:2181" read as the chroot
		// "//zk:2181", with advice of an invalid root (report j53d 5).
		// Shown masked: user information there may be a password.
		return fmt.Errorf("server %q: has a scheme (%q); want host:port such as 127.0.0.1:2181 (ZooKeeper speaks its own protocol, not HTTP; TLS is --zookeeper-ca)", redact.URL(s), s[:i])
	}
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return fmt.Errorf("server %q: a chroot in the connect string (%q) is not supported; give the servers alone and the path with the root (--zookeeper-root %s/warren)", s, s[i:], strings.TrimSuffix(s[i:], "/"))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("server %q: want host:port", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
		return fmt.Errorf("server %q: want host:port with a port from 1 to 65535", s)
	}
	return nil
}

// acls is the ACL of the znodes the Registry creates.
func (c *config) acls() []zk.ACL {
	switch {
	case c.acl != nil:
		return c.acl
	case c.username != "":
		return append(zk.DigestACL(zk.PermAll, c.username, c.password), zk.WorldACL(zk.PermRead)...)
	}
	return zk.WorldACL(zk.PermAll)
}

// dialer connects with the connect timeout, over TLS if configured.
func (c *config) dialer() zk.Dialer {
	return func(network, address string, timeout time.Duration) (net.Conn, error) {
		if timeout <= 0 || timeout > c.connectTimeout {
			timeout = c.connectTimeout
		}
		d := &net.Dialer{Timeout: timeout}
		if c.tls == nil {
			return d.Dial(network, address)
		}
		cfg := c.tls.Clone()
		if cfg.ServerName == "" {
			if host, _, err := net.SplitHostPort(address); err == nil {
				cfg.ServerName = host
			}
		}
		return tls.DialWithDialer(d, network, address, cfg)
	}
}
