package zookeeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/zk"
)

// Registry is the ZooKeeper registry.Registry. Create it with New; it is
// safe for concurrent use.
type Registry struct {
	cfg  config
	conn *zk.Conn
	sess *session
	acl  []zk.ACL

	// opMu serialises Register and Deregister so replacing or withdrawing
	// a registration never races with another call for the same znode.
	opMu sync.Mutex

	authMu sync.Mutex
	authed bool

	mu         sync.Mutex
	closed     bool
	regs       *registry.Tracker[*registration] // by znode path, with the Status
	instancers map[*Instancer]struct{}

	// bg is cancelled by Close; wg counts the goroutines it waits for
	// (a failed Register's clean-up, see deleteLater).
	bg       context.Context
	bgCancel context.CancelFunc
	wg       sync.WaitGroup
}

var (
	_ registry.Registry       = (*Registry)(nil)
	_ registry.StatusReporter = (*Registry)(nil)
)

// New returns a Registry with one ZooKeeper session for its registrar and
// every instancer. It does not wait for ZooKeeper: the client connects in
// the background (and reconnects forever), Register blocks until the
// record is written, and an instancer fills its set when ZooKeeper
// answers, so a service can start before its registry. ctx is not
// retained.
func New(ctx context.Context, opts ...Option) (*Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Registry{
		cfg:        cfg,
		sess:       newSession(cfg.sessionTimeout, cfg.logger),
		acl:        cfg.acls(),
		regs:       registry.NewTracker[*registration](),
		instancers: map[*Instancer]struct{}{},
	}
	r.bg, r.bgCancel = context.WithCancel(context.Background())
	var (
		connMu sync.Mutex
		conn   *zk.Conn
	)
	getConn := func() *zk.Conn {
		connMu.Lock()
		defer connMu.Unlock()
		return conn
	}
	c, _, err := zk.Connect(cfg.servers, cfg.sessionTimeout,
		zk.WithDialer(cfg.dialer()),
		zk.WithLogger(zkLogger{cfg.logger}),
		zk.WithLogInfo(false),
		// The event channel Connect returns drops events when nobody reads
		// it; the callback sees every one.
		zk.WithEventCallback(func(ev zk.Event) { r.sess.event(ev, getConn) }))
	if err != nil {
		r.bgCancel()
		return nil, fmt.Errorf("zookeeper: connect %v: %w", cfg.servers, err)
	}
	connMu.Lock()
	conn = c
	connMu.Unlock()
	r.conn = c
	r.sess.setID(c.SessionID(), c.SessionTimeout())
	return r, nil
}

// ensureAuth adds the digest credentials to the session once. AddAuth
// needs a connection, which New does not wait for, so the first write
// does it; from then on the client re-sends them on every reconnect and
// new session by itself.
func (r *Registry) ensureAuth(ctx context.Context) error {
	if r.cfg.username == "" {
		return nil
	}
	r.authMu.Lock()
	defer r.authMu.Unlock()
	if r.authed {
		return nil
	}
	if err := r.conn.AddAuthContext(ctx, "digest", []byte(r.cfg.username+":"+r.cfg.password)); err != nil {
		return fmt.Errorf("zookeeper: digest auth as %q: %w", r.cfg.username, r.withConnectError(err))
	}
	r.authed = true
	return nil
}

// servicePath is the parent znode of one service's instances.
func (r *Registry) servicePath(service string) string {
	return path.Join(r.cfg.root, "services", service)
}

func (r *Registry) nodePath(inst registry.Instance) string {
	return path.Join(r.servicePath(inst.Name), inst.ID)
}

// Register publishes inst as an ephemeral znode and returns once it is
// written (or ctx ends, or the ID is held by a live process at another
// address: registry.ErrConflict). When ctx ends first it returns at once,
// even while ZooKeeper is silent, with an error that wraps ctx.Err(): a
// create still in flight may yet be carried out, and that znode is
// deleted in the background (bounded by the close timeout; Close waits
// for it) or goes with the session. From then on a loop owned by the
// Registry keeps it published until Deregister or Close: it re-creates the
// znode after the session expires and after the znode is deleted by hand.
// Registering the same instance again is a no-op; a changed record for the
// same ID replaces the znode's data in place, with no gap.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	val, err := registry.EncodeRecord(inst)
	if err != nil {
		return err
	}
	p := r.nodePath(inst)

	r.opMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opMu.Unlock()
		return registry.ErrClosed
	}
	old, state, _ := r.regs.Get(p)
	if old != nil && bytes.Equal(old.val, val) && state == registry.StateRegistered {
		r.mu.Unlock()
		r.opMu.Unlock()
		return nil
	}
	r.mu.Unlock()
	if old != nil {
		// The znode stays (it is this session's); the new registration
		// overwrites its data in place.
		old.k.Stop()
	}
	g := newRegistration(r, inst, p, val)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opMu.Unlock()
		return registry.ErrClosed
	}
	r.regs.Put(p, g, registry.StateUnregistered)
	r.mu.Unlock()
	g.k.Start()
	r.opMu.Unlock()

	werr := g.k.Wait(ctx, "zookeeper: register "+p)
	if werr == nil {
		return nil
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	r.regs.Drop(p, g, werr)
	// Replaced by a newer Register of p (its znode, in this same session,
	// is the one the clean-up below would delete), or closed (Close
	// deleted what was there, and requests on the closed session fail).
	_, _, again := r.regs.Get(p)
	closed := r.closed
	r.mu.Unlock()
	g.k.Stop() // at once: its requests end with the Keeper's ctx
	if errors.Is(werr, registry.ErrConflict) || again || closed {
		return werr
	}
	// It may have been written after all, and a Register that replaced
	// p's registration stopped the one that kept its znode: neither may
	// outlive the failed call.
	_, connected, _ := r.sess.state()
	if ctx.Err() != nil || !connected {
		// The caller is gone (a start-up interrupted, a deadline): do not
		// hold it for the delete, which a silent server would stretch to
		// the close timeout. Or ZooKeeper is out of reach, and the session
		// may outlive the outage with the znode.
		if r.deleteLater(p) {
			return fmt.Errorf("%w; a znode a request still in flight may write is deleted in the background, or goes with the session", werr)
		}
		return werr
	}
	dctx, cancel := context.WithTimeout(ctx, r.cfg.closeTimeout)
	r.deleteOwn(dctx, p)
	cancel()
	return werr
}

// deleteLater deletes the znode at p, if this session owns it, in a
// goroutine the Registry owns (Close cancels it and waits for it): the
// clean-up of a Register whose ctx ended, or that ended while ZooKeeper
// was out of reach. While it is, the goroutine waits for the connection
// to come back, at most a session timeout: a session outlives a shorter
// outage, and the znode with it. It does nothing once the Registry is
// closed (closing the session removes the znode) or if p was registered
// again meanwhile. It reports whether it started.
func (r *Registry) deleteLater(p string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if !r.awaitConnected() {
			return
		}
		r.opMu.Lock()
		defer r.opMu.Unlock()
		r.mu.Lock()
		closed := r.closed
		_, _, again := r.regs.Get(p)
		r.mu.Unlock()
		if closed || again {
			return
		}
		ctx, cancel := context.WithTimeout(r.bg, r.cfg.closeTimeout)
		defer cancel()
		if err := r.deleteOwn(ctx, p); err != nil {
			r.logWarn("msg", "deleting the znode of a register that ran out of time", "znode", p, "err", err)
		}
	}()
	return true
}

// awaitConnected waits until the session is connected and reports true;
// false when the Registry is closed first, or when a whole session
// timeout passed without a connection: the session, and its znodes, are
// then presumed expired (one left behind is the server's to remove).
func (r *Registry) awaitConnected() bool {
	sig, unsubscribe := r.sess.subscribe()
	defer unsubscribe()
	expired := time.NewTimer(r.sess.sessionTimeout())
	defer expired.Stop()
	for {
		if _, connected, _ := r.sess.state(); connected {
			return true
		}
		if r.sess.lost() {
			return false
		}
		select {
		case <-sig:
		case <-expired.C:
			return false
		case <-r.bg.Done():
			return false
		}
	}
}

// Deregister withdraws inst: it deletes the znode if this session owns it
// (a newer process that took the ID over keeps its record). It waits at
// most until ctx ends or the close timeout passes, also while ZooKeeper is
// silent (a partition without resets); if the znode could not be deleted
// meanwhile the error wraps ctx.Err() (context.DeadlineExceeded for the
// close timeout) and says the znode may remain until the session expires.
// Withdrawing an instance that is not registered here is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	p := r.nodePath(inst)
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	g, ok := r.regs.Withdraw(p)
	r.mu.Unlock()
	if !ok {
		return nil
	}
	g.k.Withdraw()
	g.k.Cancel()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.closeTimeout)
	defer cancel()
	err := r.deleteOwn(ctx, p)
	g.k.Stop() // at once: its requests end with the Keeper's ctx
	// A session outlives a short outage, and the znode with it: withdrawn,
	// it would stay in discovery, kept by nobody, for as long as we run.
	if err != nil && !errors.Is(err, zk.ErrNoAuth) && r.deleteLater(p) {
		err = fmt.Errorf("%w (deleted in the background once ZooKeeper answers within the session)", err)
	}
	return err
}

// deleteOwn deletes the znode at p if this session owns it, trying again
// while ZooKeeper does not answer, until ctx ends. Each request ends with
// ctx too: a silent server (a partition without resets) would otherwise
// hold it until the client's read deadline, two thirds of the session
// timeout. An error when ctx ended wraps ctx.Err().
func (r *Registry) deleteOwn(ctx context.Context, p string) error {
	var last error
	for {
		_, stat, err := r.conn.GetContext(ctx, p)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			return nil
		case err == nil && stat.EphemeralOwner != r.conn.SessionID():
			return nil // someone else's: a newer run of this instance
		case err == nil:
			err = r.conn.DeleteContext(ctx, p, stat.Version)
			if err == nil || errors.Is(err, zk.ErrNoNode) {
				return nil
			}
			if errors.Is(err, zk.ErrBadVersion) {
				continue // changed under us: look again
			}
		}
		if ctx.Err() != nil {
			return notDeleted(ctx, p, last)
		}
		last = err
		if errors.Is(err, zk.ErrClosing) || errors.Is(err, zk.ErrNoAuth) {
			return fmt.Errorf("zookeeper: delete %s: %w", p, last)
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return notDeleted(ctx, p, last)
		}
	}
}

// notDeleted is deleteOwn's error when ctx ended first: it wraps
// ctx.Err() and says what that leaves.
func notDeleted(ctx context.Context, p string, last error) error {
	why := "no answer from ZooKeeper"
	if last != nil {
		why += fmt.Sprintf(" (last error: %v)", last)
	}
	return fmt.Errorf("zookeeper: delete %s: %w: %s; the znode may remain until the session expires", p, ctx.Err(), why)
}

// Instancer returns an sd.Instancer of service over the Registry's
// session. It returns once the first listing is in, or after the initial
// wait (default 3 s, or ctx's deadline if sooner) with an empty set and an
// error event if ZooKeeper did not answer; the set fills when it does.
// The caller must Stop it; Close stops any still running.
func (r *Registry) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	in, err := r.NewInstancer(ctx, service)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	return in, nil
}

// NewInstancer is Instancer with the concrete type.
func (r *Registry) NewInstancer(ctx context.Context, service string) (*Instancer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !registry.ValidName(service) {
		return nil, fmt.Errorf("%w: service name %q", registry.ErrInvalidInstance, service)
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, registry.ErrClosed
	}
	in := newInstancer(ctx, r, service)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		in.Stop()
		return nil, registry.ErrClosed
	}
	r.instancers[in] = struct{}{}
	r.mu.Unlock()
	return in, nil
}

func (r *Registry) forget(in *Instancer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.instancers, in)
}

// Close deletes every znode this Registry holds, stops its loops and
// instancers and closes the session, which removes any ephemeral znode
// left. It returns within the close timeout (default 3 s), also while
// ZooKeeper is silent (a partition without resets). A znode it
// could not delete — ZooKeeper out of reach or silent — is an error that
// says it may remain until the session expires (wrapping
// context.DeadlineExceeded when the close timeout ran out). It is
// idempotent.
func (r *Registry) Close() error {
	// First, so a failed Register's clean-up that holds opMu lets go.
	r.bgCancel()
	r.opMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opMu.Unlock()
		return nil
	}
	r.closed = true
	regs := r.regs.Close()
	instancers := r.instancers
	r.instancers = map[*Instancer]struct{}{}
	r.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
	defer cancel()
	var errs []error
	for p, g := range regs {
		g.k.Withdraw()
		g.k.Stop() // at once: its requests end with the Keeper's ctx
		if _, connected, _ := r.sess.state(); connected {
			errs = append(errs, r.deleteOwn(ctx, p))
		} else {
			errs = append(errs, fmt.Errorf("zookeeper: delete %s: not connected to ZooKeeper; the znode may remain until the session expires", p))
		}
	}
	for in := range instancers {
		in.Stop()
	}
	r.sess.stop()
	// The session's close waits for its answer within what is left of the
	// close timeout (at most 1 s): a silent server would hold it 1 s more.
	r.conn.CloseContext(ctx)
	r.opMu.Unlock()
	r.wg.Wait()
	return errors.Join(errs...)
}

// Status implements registry.StatusReporter: the worst state over every
// registration (retrying, then unregistered, then registered), withdrawn
// once all are withdrawn; Reregistrations is the total.
func (r *Registry) Status() registry.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.regs.Status()
}

// report records a registration's state change (its Keeper's report);
// reports from a registration that has been replaced or withdrawn are
// ignored.
func (r *Registry) report(g *registration, state registry.State, err error, reregistered bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs.Set(g.path, g, state, err, reregistered)
}

func (r *Registry) logWarn(keyvals ...any) { level.Warn(r.cfg.logger).Log(keyvals...) }

// zkLogger hands the client library's messages to the go-kit logger at
// debug level: connection churn is reported by Status and our own
// warnings already.
// withConnectError adds to an error that says only that no server could
// be reached ("zk: could not connect to a server") why the last dial
// failed: a refused connection, a TLS handshake the server or the client
// refused. The library logs it only at debug level (report j47b: every
// TLS and address mistake read alike).
func (r *Registry) withConnectError(err error) error {
	if err == nil || !errors.Is(err, zk.ErrNoServer) || r.conn == nil {
		return err
	}
	if ce := r.conn.LastConnectError(); ce != nil {
		return fmt.Errorf("%w (last connect error: %v)", err, ce)
	}
	return err
}

type zkLogger struct{ l log.Logger }

func (z zkLogger) Printf(format string, args ...any) {
	level.Debug(z.l).Log("msg", fmt.Sprintf(format, args...), "component", "zk")
}
