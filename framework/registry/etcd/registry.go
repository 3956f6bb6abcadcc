package etcd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log/level"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// ErrClosed is registry.ErrClosed, returned by Register and Instancer after
// Close; kept here so existing errors.Is checks still match.
var ErrClosed = registry.ErrClosed

// Registry is the etcd registry.Registry. Create it with New; it is safe
// for concurrent use.
type Registry struct {
	cfg config
	// client is the one client of the process's registrar and every
	// instancer (made in the background when it must authenticate);
	// conn is its one connection monitor.
	client  *lazyClient
	ownsCli bool
	conn    *connMonitor
	// tls is the client's TLS configuration (nil: plaintext, or a client
	// from WithClient), for explaining a connection that never came up.
	tls *tls.Config

	// wg tracks goroutines Deregister leaves behind; Close waits for them
	// before closing the client they use.
	wg sync.WaitGroup

	// opMu serialises Register and Deregister so replacing or withdrawing a
	// registration never races with another call for the same key.
	opMu sync.Mutex

	mu         sync.Mutex
	closed     bool
	regs       *registry.Tracker[*registration] // by key, with the Status
	instancers map[*Instancer]struct{}
	failovers  registry.Failovers // Instancer's with WithFailoverPrefixes
	unrevoked  []unrevoked        // leases Deregister could not revoke, for Close
}

var (
	_ registry.Registry       = (*Registry)(nil)
	_ registry.StatusReporter = (*Registry)(nil)
)

// New returns a Registry. It does not wait for etcd: Register blocks until
// the record is published and Instancer fills its set when etcd answers, so
// a service can start while etcd is still coming up. ctx is not retained.
//
// With WithAuth the client authenticates in the background until etcd
// answers; if etcd refuses the user or password, Register returns that
// error at once, and instancers publish it.
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
	var client *lazyClient
	var tlsCfg *tls.Config
	owns := cfg.client == nil
	if !owns {
		client = readyClient(cfg.client)
	} else {
		cc, err := cfg.clientConfig()
		if err != nil {
			return nil, err
		}
		tlsCfg = cc.TLS
		if cc.Username != "" && cc.Password != "" {
			// clientv3.New would authenticate now, waiting for etcd
			// (and failing after the dial timeout if it is down).
			client = makeClient(cc, cfg.backoffMin, cfg.backoffMax, cfg.logger)
		} else {
			cli, err := clientv3.New(cc) // does not contact etcd
			if err != nil {
				return nil, fmt.Errorf("etcd: client: %w", err)
			}
			client = readyClient(cli)
		}
	}
	return &Registry{
		cfg:        cfg,
		client:     client,
		ownsCli:    owns,
		tls:        tlsCfg,
		conn:       startConnMonitor(client),
		regs:       registry.NewTracker[*registration](),
		instancers: map[*Instancer]struct{}{},
	}, nil
}

// servicePrefix is the key prefix of one service, with the trailing slash
// so "user" never matches "user-admin".
func (r *Registry) servicePrefix(service string) string {
	return servicePrefix(r.cfg.prefix, service)
}

func servicePrefix(prefix, service string) string {
	return "/" + prefix + "/services/" + service + "/"
}

func (r *Registry) key(inst registry.Instance) string {
	return r.servicePrefix(inst.Name) + inst.ID
}

// Register publishes inst and returns once it is written (or ctx ends, or
// the ID is held by another live address: registry.ErrConflict). From then
// on a loop owned by the Registry keeps it published until Deregister or
// Close. Registering the same instance again is a no-op while it is
// registered; registering a changed record for the same ID replaces it
// without a gap.
//
// If ctx ends before the first write succeeds, Register gives up (nothing
// keeps trying) and returns an error wrapping ctx's error and the last etcd
// error.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	val, err := registry.EncodeRecord(inst)
	if err != nil {
		return err
	}
	key := r.key(inst)
	if err := r.client.failure(); err != nil {
		return fmt.Errorf("etcd: register %s: %w", key, err) // credentials refused, or closed
	}

	r.opMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opMu.Unlock()
		return fmt.Errorf("etcd registry: %w", ErrClosed)
	}
	old, state, _ := r.regs.Get(key)
	if old != nil && old.val == string(val) && state == registry.StateRegistered {
		r.mu.Unlock()
		r.opMu.Unlock()
		return nil
	}
	r.mu.Unlock()
	g := newRegistration(r, inst, key, string(val))
	if old != nil {
		// The new registration inherits the old lease as its own, so the
		// claim below may overwrite our own previous record in place.
		old.k.Stop()
		g.lease = old.currentLease()
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opMu.Unlock()
		return fmt.Errorf("etcd registry: %w", ErrClosed)
	}
	r.regs.Put(key, g, registry.StateUnregistered)
	r.mu.Unlock()
	r.opMu.Unlock()

	// The first claim is made here, in the caller's goroutine; the
	// Keeper's goroutine then holds the record (or retries a failed claim).
	// While the client is still being made, a refusal of its credentials
	// ends the wait at once: retrying cannot help.
	rctx, stop := r.untilRefused(ctx)
	werr := g.k.Run(rctx, "etcd: register "+key)
	stop()
	if werr == nil {
		return nil
	}
	if cerr := r.client.failure(); cerr != nil {
		werr = fmt.Errorf("etcd: register %s: %w", key, cerr)
	} else {
		werr = r.explainGivingUp(werr)
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	r.regs.Drop(key, g, werr)
	// Replaced by a newer Register (which took its lease over) or closed
	// (Close revoked it): the lease is not this call's to revoke.
	_, _, again := r.regs.Get(key)
	closed := r.closed
	r.mu.Unlock()
	g.k.Stop()
	if !again && !closed {
		// The lease of the record a replacing Register took over from the
		// registration it stopped (or one its loop claimed in its last
		// moment): kept by nobody now, and Close would not know of it.
		r.revokeLater(key, g.currentLease())
	}
	return werr
}

// revokeLater revokes leases in a goroutine owned by the Registry (Close
// waits for it; the caller holds opMu, as Close does, so it cannot be
// waiting yet), within the close timeout. A revoke that fails is logged
// and reported by Close.
func (r *Registry) revokeLater(key string, leases ...clientv3.LeaseID) {
	leases = slices.DeleteFunc(leases, func(l clientv3.LeaseID) bool { return l == clientv3.NoLease })
	if len(leases) == 0 {
		return
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		rctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
		defer cancel()
		for _, l := range leases {
			if err := r.revoke(rctx, l); err != nil {
				r.logWarn("msg", "revoke after a failed register", "key", key, "err", err)
				r.noteUnrevoked(err)
			}
		}
	}()
}

// untilRefused returns ctx, cancelled as well if the client still being
// made will never exist (etcd refused its credentials); stop releases it.
func (r *Registry) untilRefused(ctx context.Context) (context.Context, func()) {
	select {
	case <-r.client.settled.Done():
		return ctx, func() {}
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(r.client.settled, func() {
		if r.client.failure() != nil {
			cancel()
		}
	})
	return ctx, func() { unhook(); cancel() }
}

// Deregister withdraws inst: it deletes the record in a transaction guarded
// by our lease, so a newer registration of the same ID (another process
// that took it over) is never deleted, and then revokes the lease. It waits
// at most until ctx ends or the close timeout (default 3 s); if etcd cannot
// be reached the record disappears when the lease expires, one TTL later.
// Withdrawing an instance that is not registered here is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	key := r.key(inst)
	r.opMu.Lock()
	r.mu.Lock()
	g, ok := r.regs.Withdraw(key)
	r.mu.Unlock()
	defer r.opMu.Unlock()
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.closeTimeout)
	defer cancel()
	// The delete goes first, as the one write clients wait for; the loop's
	// shutdown (cancelling keepalive and watch) and the revoke come after,
	// off that path. withdrawing keeps the loop from taking the deletion
	// for a loss and re-publishing.
	g.k.Withdraw()
	lease := g.currentLease()
	var err error
	if lease != clientv3.NoLease {
		err = r.withLeader(ctx, func(ctx context.Context) error {
			cli, err := r.client.get(ctx) // made: a lease was granted
			if err != nil {
				return err
			}
			_, err = cli.Txn(ctx).
				If(clientv3.Compare(clientv3.LeaseValue(key), "=", lease)).
				Then(clientv3.OpDelete(key)).
				Commit()
			return err
		})
		if err != nil {
			err = fmt.Errorf("etcd: delete %s: %w", key, err)
		}
	}
	g.k.Cancel()
	// A goroutine owned by the Registry (Close waits for it) lets the loop
	// end, then revokes our lease and any the loop took in its last moment
	// (a re-registration in flight), which removes that record too.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-g.k.Done()
		rctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
		defer cancel()
		leases := []clientv3.LeaseID{lease}
		if last := g.currentLease(); last != lease {
			leases = append(leases, last)
		}
		for _, l := range leases {
			if err := r.revoke(rctx, l); err != nil {
				r.logWarn("msg", "revoke after deregister", "key", key, "err", err)
				r.noteUnrevoked(err)
			}
		}
	}()
	return err
}

// withLeader runs an idempotent write that must reach the leader until it
// succeeds or ctx ends; see tryLeader.
//
// Its attempts are bounded by a third of the close timeout when that is
// shorter than the request timeout, so Deregister and Close get at least
// three tries, on three members, within their deadline.
func (r *Registry) withLeader(ctx context.Context, write func(context.Context) error) error {
	return r.tryLeader(ctx, 0, min(r.cfg.requestTimeout, r.cfg.closeTimeout/3), write)
}

// tryLeader runs a request that must reach the leader, at most attempts
// times (0: until ctx ends). Each attempt is bounded by timeout and asks a member without a leader to refuse at once
// (WithRequireLeader); a refused, timed-out or cut-off attempt is tried
// again at once on the member the client picks next. Without that, a
// request sent to a leader just cut off from the others, or to a follower
// of a leader just killed, would hold the whole deadline. Retrying each
// request, rather than a whole sequence of them, matters: the client
// picks members in turn, so a sequence of as many requests as there are
// members would send its n-th request to the same member every time.
func (r *Registry) tryLeader(ctx context.Context, attempts int, timeout time.Duration, req func(context.Context) error) error {
	bo := backoff.New(r.cfg.backoffMin, r.cfg.backoffMax)
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), timeout)
		err := req(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !retryable(err) || n == attempts {
			return err
		}
		if !backoff.Sleep(ctx, min(bo.Next(), 100*time.Millisecond)) {
			return err
		}
	}
}

// explain adds to err, a request's failure, why the client has no
// connection to etcd, if it has none and a probe of the endpoints finds a
// reason (a TLS error, a refused connection): gRPC reports only that the
// request's time ran out. It leaves every other error as it is.
func (r *Registry) explain(cli *clientv3.Client, err error) error {
	if errors.Is(err, rpctypes.ErrPermissionDenied) || errors.Is(err, rpctypes.ErrGRPCPermissionDenied) {
		return r.explainDenied(err)
	}
	if !r.ownsCli || !(errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded || status.Code(err) == codes.Unavailable) {
		return err // a client of WithClient: its TLS configuration is unknown
	}
	if cli.ActiveConnection().GetState() == connectivity.Ready {
		return err // connected: the cause is elsewhere
	}
	why := explainNoConnection(r.cfg.endpoints, r.tls, r.cfg.dialTimeout)
	if why == nil {
		return err
	}
	return fmt.Errorf("no connection to etcd: %w: %w", why, err)
}

// explainDenied says who etcd took us for when it refused a request:
// "etcdserver: permission denied" alone sent an operator who had set no
// user name looking at roles, when etcd had used the client certificate's
// CN as the user (report j47b).
func (r *Registry) explainDenied(err error) error {
	where := "/" + r.cfg.prefix + "/"
	switch {
	case !r.ownsCli:
		return err // a client of WithClient: who it is is the caller's
	case r.cfg.username != "":
		return fmt.Errorf("%w (as etcd user %q: none of its roles grants this request under %s)", err, r.cfg.username, where)
	case r.tls != nil && (len(r.tls.Certificates) > 0 || r.tls.GetClientCertificate != nil):
		return fmt.Errorf("%w (no etcd user name was given, so etcd took the client certificate's CN as the user; "+
			"give --etcd-username and --etcd-password (WithAuth), or a role granting readwrite on %s to the user named by the CN)", err, where)
	default:
		return fmt.Errorf("%w (no etcd user name was given and etcd has auth enabled: "+
			"give --etcd-username and --etcd-password (WithAuth) of a user whose roles grant readwrite on %s)", err, where)
	}
}

// explainGivingUp is explain for a registration the caller stopped
// waiting for (app.WithRegisterTimeout shorter than one attempt): its
// error is only the context's, "context canceled", though etcd may never
// have answered at all (report j47c: a refused address and an unknown
// host read alike). Probing costs at most maxProbeTime, only when there
// is no connection.
func (r *Registry) explainGivingUp(err error) error {
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "no connection to etcd") {
		return err // not the caller's context, or explained already
	}
	cli, cerr := r.client.getWithin(context.Background(), 0)
	if cerr != nil || cli == nil || !r.ownsCli || cli.ActiveConnection().GetState() == connectivity.Ready {
		return err
	}
	why := explainNoConnection(r.cfg.endpoints, r.tls, r.cfg.dialTimeout)
	if why == nil {
		return err
	}
	return fmt.Errorf("%w (no connection to etcd: %w)", err, why)
}

// retryable reports whether err is what a member that lost its leader
// answers, an attempt that timed out on one, or a connection to a member
// that went away mid-request (Unavailable): the write may be tried on
// another member.
func retryable(err error) bool {
	switch {
	case errors.Is(err, rpctypes.ErrNoLeader), errors.Is(err, rpctypes.ErrGRPCNoLeader),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	c := status.Code(err)
	return c == codes.DeadlineExceeded || c == codes.Unavailable
}

// revoke revokes a lease; a lease that is already gone is not an error.
func (r *Registry) revoke(ctx context.Context, id clientv3.LeaseID) error {
	if id == clientv3.NoLease {
		return nil
	}
	err := r.withLeader(ctx, func(ctx context.Context) error {
		cli, err := r.client.get(ctx) // made: a lease was granted
		if err != nil {
			return err
		}
		_, err = cli.Revoke(ctx, id)
		return err
	})
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("etcd: revoke lease %x: %w", int64(id), err)
	}
	return nil
}

// Instancer returns an sd.Instancer of service over the Registry's etcd
// client (one connection for the registrar and every instancer).
// It returns once the first listing is in, or after the initial wait
// (default 3 s, or ctx's deadline if sooner) with an empty set and an error
// event if etcd did not answer; the set fills when it does. The caller must
// Stop it; Close stops any still running.
//
// With WithFailoverPrefixes it follows the Registry's own prefix (its
// region) first and the failover prefixes in order (registry.Failover).
func (r *Registry) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if len(r.cfg.failover) == 0 {
		in, err := r.NewInstancer(ctx, service)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return in, nil
	}
	f, err := registry.OpenFailover(1+len(r.cfg.failover), func(i int) (sd.Instancer, error) {
		if i == 0 {
			return r.NewInstancer(ctx, service)
		}
		return r.newInstancerAt(ctx, service, servicePrefix(r.cfg.failover[i-1], service))
	})
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	if err := r.trackFailover(f); err != nil {
		return nil, err
	}
	registry.ReportFailover(f, service, "prefix", append([]string{r.cfg.prefix}, r.cfg.failover...), r.cfg.logger, r.cfg.observer)
	return f, nil
}

// trackFailover has Close stop f (its readers and sources) unless the
// caller Stops it first; after Close it stops f and returns ErrClosed.
func (r *Registry) trackFailover(f *registry.Failover) error {
	if !r.failovers.Track(f) {
		return fmt.Errorf("%s: %w", "etcd registry", ErrClosed)
	}
	return nil
}

// NewInstancer is Instancer with the concrete type, for callers that want
// State or a typed Stop.
func (r *Registry) NewInstancer(ctx context.Context, service string) (*Instancer, error) {
	return r.newInstancerAt(ctx, service, r.servicePrefix(service))
}

func (r *Registry) newInstancerAt(ctx context.Context, service, prefix string) (*Instancer, error) {
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
		return nil, fmt.Errorf("etcd registry: %w", ErrClosed)
	}
	in := newInstancer(ctx, r.cfg, r.client, r.conn, service, prefix, r.forget, r.explain)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		in.Stop()
		return nil, fmt.Errorf("etcd registry: %w", ErrClosed)
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

// Client returns the etcd client the Registry's registrar and instancers
// share — its endpoints, TLS and credentials — once it is made (with a
// user it is made in the background; ctx bounds the wait), for a service
// that keeps state in the same cluster, such as the idempotency store of
// its keyed methods (framework/idempotency/etcdstore): in a bootstrap
// build function, d.Discovery.(*etcd.Registry).Client(ctx). The Registry
// owns it: Close closes it (unless it came from WithClient), so do not
// close it yourself, nor use it after Close.
func (r *Registry) Client(ctx context.Context) (*clientv3.Client, error) {
	return r.client.get(ctx)
}

// Close revokes every lease this Registry holds (bounded by the close
// timeout), stops its loops, instancers and connection monitor, and closes
// its client (unless it came from WithClient). It is idempotent. Its error
// names every lease it could not revoke, and those a Deregister could not
// revoke within the last TTL (they may still be alive).
func (r *Registry) Close() error { return r.close(true) }

// close is Close; revoke=false abandons the leases as a killed process
// would (tests use it to check that records expire).
func (r *Registry) close(revoke bool) error {
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	regs := r.regs.Close()
	instancers := r.instancers
	r.instancers = map[*Instancer]struct{}{}
	r.mu.Unlock()

	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
	defer cancel()
	for _, g := range regs {
		g.k.Stop()
		if revoke {
			errs = append(errs, r.revoke(ctx, g.currentLease()))
		}
	}
	// A Failover first: it unsubscribes from its sources while its
	// readers still read, then stops them.
	r.failovers.StopAll()
	for in := range instancers {
		in.Stop()
	}
	r.wg.Wait()
	if revoke { // after wg: Deregister's revokes have ended
		errs = append(errs, r.takeUnrevoked())
	}
	r.conn.stop()
	// Ends an authentication still under way; after it the client either
	// exists or never will.
	r.client.stop()
	if cli := r.client.cli; r.ownsCli && cli != nil {
		if err := cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("etcd: close client: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Status implements registry.StatusReporter. With several registrations
// the worst state wins (retrying, then unregistered, then registered);
// Reregistrations is the total.
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
	r.regs.Set(g.key, g, state, err, reregistered)
}

func (r *Registry) logWarn(keyvals ...any) {
	level.Warn(r.cfg.logger).Log(keyvals...)
}
