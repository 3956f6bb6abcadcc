// Package zktest runs a real ZooKeeper server (Debian's zookeeper package,
// 3.8) for tests and the dev mesh. The server binds 127.0.0.1 only, on a
// free port chosen when the Server is made, keeps its data in a directory
// of its own, and can be stopped and started again on the same port and
// data to play a server restart.
//
// Clients reach it through a small TCP proxy of the Server's own (Addr),
// so a test can cut every client off the server (Cut) for longer than
// their session timeout: the server then expires their sessions, exactly
// as after a network partition, and the clients find out when they are let
// through again (Heal).
//
// The server is `java … org.apache.zookeeper.server.ZooKeeperServerMain`
// with /usr/share/java/zookeeper.jar; `make test` installs the package
// (mk/zookeeper.mk). $WARREN_ZOOKEEPER_JAR overrides the jar.
package zktest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warren-mesh/warren/internal/freeport"
	"github.com/warren-mesh/warren/internal/proc"
	"github.com/warren-mesh/warren/internal/tcpproxy"
)

// ErrNoServer is returned (wrapped) when java or the ZooKeeper jar is
// missing.
var ErrNoServer = errors.New("zookeeper not installed: run `make zookeeper` (apt-get install zookeeper) or set WARREN_ZOOKEEPER_JAR")

// DefaultJar is where Debian's zookeeper package puts the server.
const DefaultJar = "/usr/share/java/zookeeper.jar"

// TickTime is the server's tick. Sessions may last 2 to 120 ticks
// (1 s to 60 s), and expired sessions are reaped once a tick.
const TickTime = 500 * time.Millisecond

// Installed reports whether java and the ZooKeeper jar are present, and
// if not, why.
func Installed() error {
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("%w: no java on PATH", ErrNoServer)
	}
	if _, err := os.Stat(jar()); err != nil {
		return fmt.Errorf("%w: %v", ErrNoServer, err)
	}
	return nil
}

func jar() string {
	if p := os.Getenv("WARREN_ZOOKEEPER_JAR"); p != "" {
		return p
	}
	return DefaultJar
}

// Server is one standalone ZooKeeper process and its proxy. Its methods
// are safe for concurrent use.
type Server struct {
	dir   string
	port  int // the server's own client port
	extra string
	proxy *tcpproxy.Proxy

	mu      sync.Mutex
	proc    atomic.Pointer[proc.Proc] // nil while stopped
	held    freeport.Keeper           // holds the server's port while stopped
	log     *ringBuffer
	closed  bool
	started int
}

// Option configures a Server.
type Option func(*Server)

// WithConfig appends lines to zoo.cfg (an authProvider, say). The ports,
// addresses and data directory are the package's; do not set them.
func WithConfig(lines string) Option { return func(s *Server) { s.extra = lines } }

// New picks a free port, writes zoo.cfg and starts the proxy, without
// starting the server. Close removes everything.
func New(opts ...Option) (*Server, error) {
	if err := Installed(); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("zktest: port: %w", err)
	}
	dir, err := os.MkdirTemp("", "warren-zookeeper-")
	if err != nil {
		return nil, fmt.Errorf("zktest: %w", err)
	}
	s := &Server{dir: dir, port: port, log: &ringBuffer{max: 256 << 10}}
	for _, o := range opts {
		o(s)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo.cfg"), []byte(s.config()), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("zktest: %w", err)
	}
	if s.proxy, err = tcpproxy.New(s.DirectAddr()); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("zktest: %w", err)
	}
	// Held (and claimed) from the pick until the first Start, as after a
	// Stop: no other process takes the port before the server binds it.
	s.held.Hold(s.DirectAddr())
	return s, nil
}

// Start is New followed by Server.Start.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	s, err := New(opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Addr is where clients connect: the proxy, "127.0.0.1:port".
func (s *Server) Addr() string { return s.proxy.Addr() }

// DirectAddr is the server's own client port, bypassing the proxy.
func (s *Server) DirectAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// Cut closes every client connection and refuses new ones until Heal: a
// partition between the server and all its clients. Sessions of clients
// cut off for longer than their timeout expire.
func (s *Server) Cut() { s.proxy.Block() }

// Silence keeps client connections open but drops everything on them
// until Heal: a partition without resets, noticed by a client only when
// its read deadline passes.
func (s *Server) Silence() { s.proxy.SetSilent(true) }

// Heal lets clients through again (after Silence their connections are
// broken: they reconnect).
func (s *Server) Heal() {
	s.proxy.Unblock()
	s.proxy.SetSilent(false)
}

// Log returns the tail of what the server printed (all runs).
func (s *Server) Log() string { return s.log.String() }

func (s *Server) config() string {
	return fmt.Sprintf(`tickTime=%d
dataDir=%s
clientPort=%d
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,cons,stat
maxSessionTimeout=%d
maxClientCnxns=0
`, TickTime.Milliseconds(), filepath.Join(s.dir, "data"), s.port, (120*TickTime).Milliseconds()) + s.extra + "\n"
}

// Start launches the server and waits until it serves (`srvr` answers
// with its mode). Starting a running server is an error. The data
// directory is kept across Stop and Start: znodes and sessions survive a
// restart, as on a real ensemble member.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("zktest: server closed")
	}
	if s.proc.Load() != nil {
		s.mu.Unlock()
		return errors.New("zktest: server already running")
	}
	s.started++
	fmt.Fprintf(s.log, "=== zktest: start #%d ===\n", s.started)
	// The jar's manifest names its dependencies, but Debian's leaves out
	// the Netty codec and resolver that the Netty connection factory (and
	// so TLS) needs; they are in /usr/share/java all the same.
	cp := strings.Join([]string{"/etc/zookeeper/conf", jar(),
		"/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar",
		"/usr/share/java/netty-transport-native-unix-common.jar",
		"/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar"}, ":")
	cmd := exec.Command("java",
		// A small, quick-starting JVM: the tests run many of them on 2 cores.
		"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k",
		"-Dzookeeper.root.logger=INFO,CONSOLE", "-Dzookeeper.console.threshold=INFO",
		"-Dzookeeper.jmx.log4j.disable=true",
		"-cp", cp, "org.apache.zookeeper.server.ZooKeeperServerMain",
		filepath.Join(s.dir, "zoo.cfg"))
	cmd.Dir = s.dir
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	s.held.Release() // just before the server binds it
	p, err := proc.Run(cmd)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("zktest: start java: %w", err)
	}
	s.proc.Store(p)
	s.mu.Unlock()

	if err := s.waitServing(ctx, p.Exited()); err != nil {
		s.Stop()
		return fmt.Errorf("zktest: server did not come up: %w\n%s", err, tail(s.Log(), 3000))
	}
	return nil
}

// waitServing asks `srvr` until the answer has a Mode: line (`ruok`
// answers before the server serves).
func (s *Server) waitServing(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if out, err := FourLetter(ctx, s.DirectAddr(), "srvr"); err == nil && strings.Contains(out, "Mode:") {
			return nil
		}
		select {
		case <-exited:
			return errors.New("java exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FourLetter sends a four-letter command (srvr, ruok, cons) to addr and
// returns the answer.
func FourLetter(ctx context.Context, addr, cmd string) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	var b strings.Builder
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String(), sc.Err()
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and waits for
// it. Stopping a stopped server does nothing. Its port is then held until
// the next Start (freeport.Hold), so no other process takes it meanwhile.
func (s *Server) Stop() error {
	if p := s.proc.Swap(nil); p != nil {
		p.Stop(syscall.SIGTERM, 10*time.Second)
		s.held.Hold(s.DirectAddr())
	}
	return nil
}

// Kill ends the server at once with SIGKILL, as a crash would; its port is
// held as after Stop.
func (s *Server) Kill() error {
	if p := s.proc.Swap(nil); p != nil {
		p.Kill()
		s.held.Hold(s.DirectAddr())
	}
	return nil
}

// Restart stops the server and starts it again on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.Start(ctx)
}

// Close stops the server and the proxy and removes the data directory.
// It is idempotent.
func (s *Server) Close() error {
	s.Kill()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.held.Close()
	s.proxy.Close()
	return os.RemoveAll(s.dir)
}

// freePort picks a free TCP port on 127.0.0.1 below the ephemeral range
// (freeport), so no outgoing connection takes it before the server binds.
func freePort() (int, error) {
	ports, err := freeport.Pick(1, false)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// ringBuffer keeps the last max bytes the server printed.
type ringBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *ringBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *ringBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
