// Package embedetcd runs a real single-node etcd inside the current process,
// for tests and benchmarks of code that talks to etcd.
//
// A Server binds only 127.0.0.1, on free ports picked once, and keeps its
// data directory and ports across Stop and Start, so a test can restart etcd
// underneath a live client exactly as an operator would restart the daemon.
//
// Clients reach etcd through a small TCP front door owned by the Server
// (Endpoints). Stop cuts every connection through it at once, the way a
// crashed etcd or a dropped network does; without it, etcd's graceful
// shutdown would keep serving open watch and keepalive streams for about
// seven seconds, and a "stopped" etcd would not look stopped to a client.
// While etcd is down the Server holds all three ports (freeport.Hold: they
// refuse connections, as a stopped etcd's do, and no other socket can bind
// them), so on a busy machine no other process takes one during the outage
// and makes the restart fail.
//
//	srv, err := embedetcd.Start()
//	...
//	defer srv.Close()
//	cli, _ := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints()})
package embedetcd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/acceptloop"
	"github.com/warren-mesh/warren/internal/freeport"
)

// ErrClosed is returned (wrapped) by Start after Close. It is
// registry.ErrClosed, Warren's one "used after Close" error.
var ErrClosed = registry.ErrClosed

// Option configures a Server.
type Option func(*options)

type options struct {
	dir          string
	logger       *zap.Logger
	startTimeout time.Duration
	fsync        bool
	tweak        func(*embed.Config)
}

// WithDir keeps etcd's data in dir instead of a fresh temporary directory.
// A given dir is never removed; a temporary one is removed by Close.
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithLogger sends etcd's own log to lg. By default it is discarded, so test
// output shows only what the test says.
func WithLogger(lg *zap.Logger) Option { return func(o *options) { o.logger = lg } }

// WithStartTimeout bounds how long Start waits for etcd to serve
// (default 15 s; leader election of a single node takes about a second).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// WithFsync turns fsync back on. It is off by default because the data
// only has to survive a Stop/Start inside this process (the page cache
// keeps it), and fsync on a shared test machine makes latency noisy.
func WithFsync() Option { return func(o *options) { o.fsync = true } }

// WithConfig lets a caller adjust the embed.Config after the helper has
// filled it in, e.g. to change the heartbeat or the auto-compaction.
func WithConfig(f func(*embed.Config)) Option { return func(o *options) { o.tweak = f } }

// Server is one embedded etcd member. Its methods are safe for concurrent
// use.
type Server struct {
	opts   options
	ownDir bool
	front  string // host:port clients dial (the front door)
	client string // host:port etcd itself listens on for clients
	peer   string // host:port of the peer (raft) listener
	mu     sync.Mutex
	etcd   *embed.Etcd
	door   *frontDoor
	locked *os.File // the data dir's lock while etcd runs (lockDir)
	closed bool
	// While etcd is down: its own client and peer ports, and the front
	// door's, let go just before each is bound again.
	heldOwn, heldFront freeport.Keeper
	// accepted counts client connections through the front door, over
	// every run, so a test can count how many connections clients open.
	accepted atomic.Int64
}

// New prepares a Server (data dir and ports) without starting etcd, so a
// test can hand the endpoints to a client while etcd is still down.
func New(opts ...Option) (*Server, error) {
	s := &Server{opts: options{startTimeout: 15 * time.Second, logger: zap.NewNop()}}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.opts.dir == "" {
		dir, err := os.MkdirTemp("", "embedetcd-")
		if err != nil {
			return nil, fmt.Errorf("embedetcd: data dir: %w", err)
		}
		s.opts.dir, s.ownDir = dir, true
	}
	ports, err := freePorts(3)
	if err != nil {
		s.removeDir()
		return nil, err
	}
	s.front, s.client, s.peer = ports[0], ports[1], ports[2]
	if err := s.hold(); err != nil {
		s.heldOwn.Close()
		s.heldFront.Close()
		s.removeDir()
		return nil, err
	}
	return s, nil
}

// Start prepares a Server and starts etcd. It returns once etcd serves
// requests.
func Start(opts ...Option) (*Server, error) {
	s, err := New(opts...)
	if err != nil {
		return nil, err
	}
	if err := s.Start(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Endpoints returns the client endpoints ("127.0.0.1:port"). They stay the
// same across Stop and Start.
func (s *Server) Endpoints() []string { return []string{s.front} }

// Accepted returns how many client connections the Server has accepted
// since New, over every Start: a test of connection sharing counts them.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Dir returns the data directory.
func (s *Server) Dir() string { return s.opts.dir }

// Running reports whether etcd is currently started.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etcd != nil
}

// Start starts etcd on the Server's data dir and ports, or does nothing if
// it is running. It returns once etcd serves requests.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("embedetcd: %w", ErrClosed)
	}
	if s.etcd != nil {
		return nil
	}
	cfg := s.config()
	// Before the ports are let go of: a dir in use fails the Start at
	// once, and the ports stay held.
	locked, err := lockDir(cfg.Dir)
	if err != nil {
		return err
	}
	e, door, err := s.run(cfg)
	if err != nil {
		locked.Close()
		s.hold() // for a later Start, as after Stop
		return err
	}
	s.etcd, s.door, s.locked = e, door, locked
	return nil
}

// run lets go of etcd's held ports and starts it on them, then does the
// same for the front door once etcd serves.
func (s *Server) run(cfg *embed.Config) (*embed.Etcd, *frontDoor, error) {
	s.heldOwn.Release()
	e, err := startWithRetry(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("embedetcd: start on %s: %w", s.opts.dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, nil, fmt.Errorf("embedetcd: start: %w", err)
	case <-time.After(s.opts.startTimeout):
		e.Server.Stop()
		e.Close()
		return nil, nil, fmt.Errorf("embedetcd: not ready within %s", s.opts.startTimeout)
	}
	s.heldFront.Release()
	door, err := openFrontDoor(s.front, s.client, &s.accepted)
	if err != nil {
		e.Close()
		<-e.Server.StopNotify()
		return nil, nil, err
	}
	return e, door, nil
}

// hold holds the ports while etcd is down. It returns an error if one
// could not be held (a later Start may then find it taken).
func (s *Server) hold() error {
	if err := errors.Join(s.heldOwn.Hold(s.client, s.peer), s.heldFront.Hold(s.front)); err != nil {
		return fmt.Errorf("embedetcd: %w", err)
	}
	return nil
}

// Stop cuts every client connection and stops etcd, keeping its data dir
// and ports for a later Start. It does nothing if etcd is not running. Its
// error says a port could not be held (the next Start may fail).
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.etcd == nil {
		return nil
	}
	s.stopLocked()
	return s.hold()
}

func (s *Server) stopLocked() {
	if s.etcd == nil {
		return
	}
	// The front door goes first so clients see the outage at once and etcd's
	// graceful drain has no open streams to wait for.
	s.door.close()
	s.etcd.Close()
	<-s.etcd.Server.StopNotify()
	s.locked.Close() // etcd has let go of the dir
	s.etcd, s.door, s.locked = nil, nil, nil
}

// Close stops etcd and removes a temporary data dir. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopLocked()
	s.heldOwn.Close()
	s.heldFront.Close()
	return s.removeDir()
}

func (s *Server) removeDir() error {
	if !s.ownDir {
		return nil
	}
	if err := os.RemoveAll(s.opts.dir); err != nil {
		return fmt.Errorf("embedetcd: remove %s: %w", s.opts.dir, err)
	}
	return nil
}

func (s *Server) config() *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = "embedetcd"
	cfg.Dir = s.opts.dir
	cu := url.URL{Scheme: "http", Host: s.client}
	fu := url.URL{Scheme: "http", Host: s.front}
	pu := url.URL{Scheme: "http", Host: s.peer}
	cfg.ListenClientUrls = []url.URL{cu}
	cfg.AdvertiseClientUrls = []url.URL{fu}
	cfg.ListenPeerUrls = []url.URL{pu}
	cfg.AdvertisePeerUrls = []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	cfg.ListenMetricsUrls = nil
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(s.opts.logger)
	cfg.UnsafeNoFsync = !s.opts.fsync
	if s.opts.tweak != nil {
		s.opts.tweak(cfg)
	}
	return cfg
}

// startWithRetry retries a start that failed because a port is briefly
// still held (a just-closed listener on a busy machine); the ports are ours
// and we keep them, since a restart must come back where clients look.
func startWithRetry(cfg *embed.Config) (*embed.Etcd, error) {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		var e *embed.Etcd
		e, err = embed.StartEtcd(cfg)
		if err == nil {
			return e, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil, err
}

// freePorts picks n distinct free loopback addresses below the ephemeral
// range (freeport), so none is taken by an outgoing connection before etcd
// binds it.
func freePorts(n int) ([]string, error) {
	addrs, err := freeport.Addrs(n)
	if err != nil {
		return nil, fmt.Errorf("embedetcd: %w", err)
	}
	return addrs, nil
}

// frontDoor forwards TCP connections from the public client port to etcd's
// own listener, and can cut them all at once.
type frontDoor struct {
	ln       net.Listener
	target   string
	accepted *atomic.Int64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	closed   bool
	done     chan struct{} // closed by close(), ends a backoff at once
	wg       sync.WaitGroup
}

func openFrontDoor(addr, target string, accepted *atomic.Int64) (*frontDoor, error) {
	ln, err := freeport.Listen(addr) // held by us a moment ago
	if err != nil {
		return nil, fmt.Errorf("embedetcd: %w", err)
	}
	d := &frontDoor{ln: ln, target: target, conns: map[net.Conn]struct{}{}, accepted: accepted, done: make(chan struct{})}
	d.wg.Add(1)
	go d.accept()
	return d, nil
}

func (d *frontDoor) accept() {
	defer d.wg.Done()
	// A failed accept (out of descriptors, say) is waited out, as net/http
	// takes it: returning would leave the port listening with nobody
	// accepting, and every later client hanging. Run returns once close()
	// closes the listener (or for a listener that cannot accept at all).
	_ = acceptloop.Run(d.ln, d.forward, acceptloop.WithStop(d.done))
}

// forward joins an accepted client connection to etcd's own listener.
func (d *frontDoor) forward(c net.Conn) {
	d.accepted.Add(1)
	up, err := net.DialTimeout("tcp", d.target, 2*time.Second)
	if err != nil {
		c.Close()
		return
	}
	if !d.track(c, up) { // closed meanwhile: track closed both
		return
	}
	d.wg.Add(2)
	go d.pipe(c, up)
	go d.pipe(up, c)
}

func (d *frontDoor) track(cs ...net.Conn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		d.conns[c] = struct{}{}
	}
	return true
}

// pipe copies one direction; when either side ends, both are closed so the
// other pipe ends too.
func (d *frontDoor) pipe(dst, src net.Conn) {
	defer d.wg.Done()
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	d.mu.Lock()
	delete(d.conns, dst)
	delete(d.conns, src)
	d.mu.Unlock()
}

func (d *frontDoor) close() {
	d.mu.Lock()
	d.closed = true
	close(d.done)
	d.ln.Close()
	for c := range d.conns {
		c.Close()
	}
	d.mu.Unlock()
	d.wg.Wait()
}
