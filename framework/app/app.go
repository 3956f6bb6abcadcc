// Package app runs a Warren service's lifecycle over any number of
// transports (transport.Server: HTTP first, gRPC next). Run goes through
// the phases in order, each a named method in this file, each applied to
// every transport before the next phase starts:
//
//  1. listen      bind every transport (port 0 allowed)
//  2. serve       every transport answers: health, the service
//  3. selfcheck   reach each advertised endpoint and check the answer came
//     from this process, so a wrong address fails start-up instead of
//     publishing an instance nobody can reach
//  4. register    publish the instance once, with every endpoint;
//     readiness turns green
//  5. run         until SIGTERM/SIGINT/SIGHUP or ctx ends (watchdog meanwhile);
//     each transport is an oklog/run actor: one failing ends the phase
//  6. withdraw    readiness 503 and deregister, so clients stop picking us
//  7. grace       keep serving while the withdrawal propagates
//  8. drain       every transport finishes its in-flight calls, together,
//     within the drain timeout
//  9. release     close the service's closers, then the registry
//
// A signal, or the end of ctx, during 1–4 ends the start-up at once
// (ErrInterrupted); so does a transport that stops on its own during 3–4
// (ErrServe), rather than publishing its dead endpoint. A second
// signal during 6–8 forces exit; one that comes within a second of the
// first is the same request delivered twice and is dropped. A start-up that
// fails in phases 1–4 closes the transports, the closers and the registry
// before Run returns. See docs/lifecycle.md for why the order is what it is.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/httpserver"
	"github.com/warren-mesh/warren/internal/stopsig"
)

// Errors Run can return; each is wrapped with detail.
var (
	// ErrAlreadyRun means Run was called a second time on one App.
	ErrAlreadyRun = errors.New("app: Run called twice")
	// ErrSelfCheck means an advertised endpoint did not reach this process.
	ErrSelfCheck = errors.New("self-check failed")
	// ErrRegister means the first registration failed.
	ErrRegister = errors.New("registration failed")
	// ErrForced means a second signal cut the graceful shutdown short.
	ErrForced = errors.New("forced exit on second signal")
	// ErrInterrupted means a signal, or the end of Run's ctx, ended the
	// start-up (a self-check or a registration still being retried)
	// before the instance was ready.
	ErrInterrupted = errors.New("start-up interrupted")
	// ErrDrainTimeout means in-flight calls were still running when the
	// drain timeout ran out; their connections were closed. It is
	// transport.ErrDrainTimeout.
	ErrDrainTimeout = transport.ErrDrainTimeout
	// ErrServe means a transport stopped serving on its own.
	ErrServe = errors.New("transport server failed")
	// ErrWithdraw means the deregistration on shutdown failed (the
	// registry unreachable, or too slow for the withdraw timeout): the
	// instance may stay listed until its record expires. Run returns it
	// after an otherwise clean shutdown too, so the exit status says so.
	ErrWithdraw = errors.New("withdraw from discovery failed; the instance may stay listed until its record expires")
)

// ReadinessCacheAge is how long a run of the service's own readiness checks
// is reused: /readyz probes, the watchdog and a registry's heartbeat within
// it share one run. registered and draining are never cached.
const ReadinessCacheAge = time.Second

// App is one service process. Build it with New and call Run once.
type App struct {
	name     string
	servers  []transport.Server
	registry registry.Registry
	opts     options
	logger   log.Logger
	nonce    string

	live, ready *health.Set
	own         *health.Set   // the service's own readiness checks only
	ownCacheAge time.Duration // how long own serves a run again (the watchdog's floor)

	started    atomic.Bool
	draining   atomic.Bool
	registered atomic.Bool // our view, for registries without StatusReporter
	withdrawn  atomic.Bool // set by the watchdog

	mu      sync.Mutex
	addrs   []net.Addr // bound address per server, after listen
	served  []chan struct{}
	errs    []error // why server i's Serve returned; read after served[i] closes
	serving bool
	debug   *debugServer
	inst    registry.Instance
	readyCh chan struct{}
	// unwithdrawn is why the watchdog's withdrawal may have left the
	// record listed (it failed), until the watchdog registers again.
	unwithdrawn error
}

// New declares a service served over HTTP by handler (everything but
// /healthz and /readyz; see package transport/httpserver) and over every
// transport added with WithServer. handler may be nil when WithServer
// gives the transports. reg is owned by the App from here on: Run closes
// it in its last phase, and so does a failed start-up.
func New(name string, handler http.Handler, reg registry.Registry, opts ...Option) (*App, error) {
	if !registry.ValidName(name) {
		return nil, fmt.Errorf("app: service name %q: %w", name, registry.ErrInvalidInstance)
	}
	if reg == nil {
		return nil, errors.New("app: nil registry")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	var servers []transport.Server
	if handler != nil {
		hs, err := httpserver.New(handler, o.httpOptions()...)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		servers = append(servers, hs)
	}
	servers = append(servers, o.servers...)
	if len(servers) == 0 {
		return nil, errors.New("app: no transport: give a handler or WithServer")
	}
	schemes := map[string]bool{}
	for _, s := range servers {
		if schemes[s.Scheme()] {
			return nil, fmt.Errorf("app: two transports with scheme %q; an instance publishes one endpoint per scheme", s.Scheme())
		}
		schemes[s.Scheme()] = true
	}
	var nb [8]byte
	_, _ = rand.Read(nb[:])
	a := &App{
		name:        name,
		servers:     servers,
		registry:    reg,
		opts:        o,
		logger:      log.With(o.logger, "svc", name),
		nonce:       hex.EncodeToString(nb[:]),
		live:        health.NewSet(0),
		ready:       health.NewSet(0),
		own:         health.NewSet(0, health.CacheFor(ReadinessCacheAge)),
		ownCacheAge: ReadinessCacheAge,
		readyCh:     make(chan struct{}),
	}
	if a.opts.handshakes == nil { // one for every transport: the limit is the process's
		a.opts.handshakes = transport.NewHandshakeLog(a.logger, transport.DefaultHandshakeLogEvery)
	}
	a.ready.Add(transport.RegisteredCheck, a.checkRegistered)
	a.ready.Add("draining", a.checkDraining)
	for n, c := range o.readiness {
		a.own.Add(n, c)
	}
	a.ready.Include(a.own)
	if ra, ok := reg.(registry.ReadinessAware); ok {
		ra.UseReadiness(a.ownReadiness)
	}
	return a, nil
}

// Ready is closed once the instance is registered and serving.
func (a *App) Ready() <-chan struct{} { return a.readyCh }

// DebugAddr returns the debug listener's address, "" when there is none
// (valid once Run has passed the listen phase, e.g. after Ready).
func (a *App) DebugAddr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.debug == nil {
		return ""
	}
	return a.debug.ln.Addr().String()
}

// Instance returns the published instance (valid after Ready).
func (a *App) Instance() registry.Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inst
}

// Run runs the lifecycle until a signal or ctx ends it and the shutdown
// phases are done. It returns nil after a clean shutdown.
func (a *App) Run(ctx context.Context) error {
	if !a.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	sigs := make(chan os.Signal, 2)
	if a.opts.signals {
		signal.Notify(sigs, stopsig.Signals()...) // SIGHUP unless started ignoring it
		defer signal.Stop(sigs)
	}
	sw := watchSignals(sigs, a.logger, repeatWindow)
	defer sw.Close()

	if err := a.listen(); err != nil {
		a.abort()
		return err
	}
	a.serve()
	// A signal ends the start-up at once: a self-check or a registration
	// retried against an unreachable registry can take many seconds. So
	// does a transport that stops on its own: to go on waiting for the registry
	// would neither serve nor exit, and then publish a dead endpoint.
	startCtx, endStart := context.WithCancelCause(ctx)
	go func() { // owned by Run: ends with the start-up at the latest
		select {
		case <-sw.Stop():
			endStart(fmt.Errorf("%w (%s)", ErrInterrupted, sw.First()))
		case <-startCtx.Done():
		}
	}()
	for i := range a.servers {
		go func() { // owned by Run: ends with the start-up at the latest
			select {
			case <-a.served[i]:
				endStart(a.serveFailure(i))
			case <-startCtx.Done():
			}
		}()
	}
	phase, began := "selfcheck", time.Now()
	err := a.selfCheck(startCtx)
	if err == nil {
		phase, began = "register", time.Now()
		err = a.register(startCtx)
	}
	// What cut the start-up short, if anything, is read before the
	// undoing: a signal during it comes after the failure, not before.
	cut := context.Cause(startCtx)
	endStart(nil)
	if err != nil {
		// Every phase writes its line, a failed one too; the error itself
		// is Run's to return (and bootstrap's exit line to show), once.
		level.Error(a.logger).Log("phase", phase, "failed", true, "took", time.Since(began).Round(time.Microsecond))
		a.abort()
		switch {
		case cut == nil:
			return err
		case errors.Is(cut, ErrServe):
			return fmt.Errorf("%w; the %s was cut short: %w", cut, phase, err)
		case errors.Is(cut, ErrInterrupted): // a signal
			return fmt.Errorf("%w: %w", cut, err)
		default:
			// An embedder's cancel, which replaces signals (WithSignals):
			// the phase it cut short failed because of it, not on its own.
			return fmt.Errorf("%w (%v): %w", ErrInterrupted, cut, err)
		}
	}
	cause := a.runUntilStopped(ctx, sw)
	return a.shutdown(cause, sw)
}

// host is what every transport gets before it listens.
func (a *App) host() transport.Host {
	return transport.Host{
		Service: a.name, Version: a.opts.version, Nonce: a.nonce,
		InstanceID: func() string { return a.Instance().ID },
		Live:       a.live, Ready: a.ready, Logger: a.logger,
		Handshakes: a.opts.handshakes, AccessLog: a.opts.accessLog,
	}
}

// listen is phase 1: every transport binds, then the instance is built
// from the bound addresses.
func (a *App) listen() error {
	h := a.host()
	addrs := make([]net.Addr, 0, len(a.servers))
	defer func() { // the transports that did bind are closed by abort
		a.mu.Lock()
		a.addrs = addrs
		a.mu.Unlock()
	}()
	for _, s := range a.servers {
		addr, err := s.Listen(h)
		if err != nil {
			return err
		}
		addrs = append(addrs, addr)
		if _, ok := addr.(*net.TCPAddr); !ok {
			return fmt.Errorf("app: %s transport bound %s, not a TCP address", s.Scheme(), addr)
		}
	}
	inst, err := a.instanceFor(addrs)
	if err != nil {
		return err
	}
	var dbg *debugServer
	if a.opts.debugHandler != nil {
		if dbg, err = startDebug(a.opts.debugAddr, a.debugHandler(inst.Host()), a.opts.readHeader, a.opts.idle, a.logger); err != nil {
			return err
		}
		// Published with the instance, so Prometheus (or make up) can find
		// every scrape target through the same discovery as the traffic.
		inst.Metadata = maps.Clone(inst.Metadata)
		if inst.Metadata == nil {
			inst.Metadata = map[string]string{}
		}
		inst.Metadata[MetricsMetadataKey] = "http://" + debugHostPort(dbg.ln.Addr().(*net.TCPAddr), inst.Host()) + "/metrics"
	}
	a.mu.Lock()
	a.inst, a.debug = inst, dbg
	a.mu.Unlock()
	bound := make([]string, len(addrs))
	for i, addr := range addrs {
		bound[i] = addr.String()
	}
	if len(a.opts.startLine) > 0 {
		level.Info(a.logger).Log(a.opts.startLine...)
	}
	kv := []any{"phase", "listen", "addr", strings.Join(bound, ","), "advertise", strings.Join(inst.Endpoints, ",")}
	if dbg != nil {
		kv = append(kv, "debug", inst.Metadata[MetricsMetadataKey])
	}
	level.Info(a.logger).Log(kv...)
	a.warnLoopbackAdvertised(addrs)
	return nil
}

// warnLoopbackAdvertised says once, at start, that a loopback --advertise
// beside a non-loopback listen address publishes an instance other hosts
// cannot reach: accepted silently before, and the self-check passes it.
func (a *App) warnLoopbackAdvertised(addrs []net.Addr) {
	adv, _, _ := splitAdvertise(a.opts.advertise) // parsed by instanceFor already
	for _, addr := range addrs {
		if loopbackAdvertised(adv, addr.(*net.TCPAddr)) {
			level.Warn(a.logger).Log("msg", "advertised address is loopback but the service listens beyond it: other hosts discover an address that reaches only themselves",
				"advertise", a.opts.advertise, "listen", addr,
				"fix", "set --advertise (WARREN_ADVERTISE, app.WithAdvertise) to the address other hosts reach this one at, or listen on 127.0.0.1 for a one-machine setup")
			return
		}
	}
}

// serve is phase 2: every transport answers from here on, so the
// self-check and the registry's checks can reach it. Each Serve runs in a
// goroutine owned by the App, which ends when the transport is shut down
// or closed.
func (a *App) serve() {
	a.mu.Lock()
	a.served = make([]chan struct{}, len(a.servers))
	a.errs = make([]error, len(a.servers))
	a.serving = true
	a.mu.Unlock()
	for i, s := range a.servers {
		a.served[i] = make(chan struct{})
		go func() {
			defer close(a.served[i])
			a.errs[i] = s.Serve()
		}()
	}
	level.Info(a.logger).Log("phase", "serve", "transports", strings.Join(a.schemes(), ","))
}

// selfCheck is phase 3: each transport probes its own advertised endpoint
// until the answer carries this process's nonce, all within one timeout.
func (a *App) selfCheck(ctx context.Context) error {
	if !a.opts.selfCheck {
		level.Info(a.logger).Log("phase", "selfcheck", "skipped", "disabled by option")
		return nil
	}
	inst := a.Instance()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, a.opts.selfCheckTimeout)
	defer cancel()
	start := time.Now()
	for i, s := range a.servers {
		ep := inst.Endpoints[i]
		// Quick at first, at most twice a second, while the transport
		// comes up or the network learns the route.
		b := backoff.New(50*time.Millisecond, 500*time.Millisecond)
		var cause error
		for {
			err := s.Probe(ctx, ep)
			if err == nil {
				break
			}
			// The error names the last answer the probes got ("connection
			// refused", "another process"), not the deadline that cut the
			// final probe short; only probes that all ran out say that.
			if ctx.Err() == nil || cause == nil {
				cause = err
			}
			if certProblem(err) { // the same on every try: say so now
				return fmt.Errorf("%w: advertised endpoint %s answered, but TLS failed: %w; callers dial the advertised address and check "+
					"the certificate as this probe does: it must name that address (an IP SAN for an IP), be signed by a CA they trust, "+
					"and under mutual TLS allow client use (extended key usage clientAuth) — or the address reaches another process. "+
					"Turning the self-check off would register an instance no caller can reach (docs/security.md)",
					ErrSelfCheck, ep, err)
			}
			if !backoff.Sleep(ctx, b.Next()) {
				if parent.Err() != nil {
					// A signal or the embedder's cancel, not the timeout:
					// "did not reach … within 5s" was said of a check
					// interrupted after 1.5 s (report j53d finding 10).
					return fmt.Errorf("self-check interrupted after %s, advertised endpoint %s not reached yet (last: %v): %w",
						time.Since(start).Round(time.Millisecond), ep, cause, parent.Err())
				}
				return fmt.Errorf("%w: advertised endpoint %s did not reach this process (listening on %s) within %s: %w; "+
					"set the advertised address to one that reaches this process, or turn the self-check off on networks without hairpin routing",
					ErrSelfCheck, ep, a.addrs[i], a.opts.selfCheckTimeout, cause)
			}
		}
	}
	level.Info(a.logger).Log("phase", "selfcheck", "endpoints", strings.Join(inst.Endpoints, ","), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// certProblem reports whether a probe failed in the TLS handshake over a
// certificate: ours refused (an alert from the server) or theirs not
// verified. gRPC reports the handshake only as text in its status.
func certProblem(err error) bool {
	var cv *tls.CertificateVerificationError
	var host x509.HostnameError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var op *net.OpError
	switch {
	case errors.As(err, &cv), errors.As(err, &host), errors.As(err, &unknown), errors.As(err, &invalid):
		return true
	case errors.As(err, &op) && op.Op == "remote error" && strings.HasPrefix(op.Err.Error(), "tls: "):
		return true
	}
	s := err.Error()
	return strings.Contains(s, "authentication handshake failed") || strings.Contains(s, "x509: ")
}

// register is phase 4: one registration, with every endpoint.
func (a *App) register(ctx context.Context) error {
	inst := a.stampRegistered()
	if a.opts.registerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.opts.registerTimeout)
		defer cancel()
	}
	start := time.Now()
	if err := a.registry.Register(ctx, inst); err != nil {
		return fmt.Errorf("%w: %s at %s: %w", ErrRegister, inst.ID, strings.Join(inst.Endpoints, ","), err)
	}
	a.registered.Store(true)
	close(a.readyCh)
	kv := append([]any{"phase", "register", "id", inst.ID, "endpoints", strings.Join(inst.Endpoints, ",")}, describeRegistry(a.registry, inst)...)
	level.Info(a.logger).Log(append(kv, "took", time.Since(start).Round(time.Microsecond))...)
	return nil
}

// stampRegistered records the time of the first registration in the
// instance's metadata (RegisteredMetadataKey), for operators' tools, and
// returns the instance to register. The watchdog's later registrations
// keep it. A value the service set itself is kept.
func (a *App) stampRegistered() registry.Instance {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.inst.Metadata[RegisteredMetadataKey]; !ok {
		md := maps.Clone(a.inst.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		md[RegisteredMetadataKey] = time.Now().UTC().Format(time.RFC3339)
		a.inst.Metadata = md
	}
	return a.inst
}

// serveFailure is why transport i stopped on its own, wrapping ErrServe;
// valid once served[i] is closed.
func (a *App) serveFailure(i int) error {
	err := a.errs[i]
	if err == nil {
		err = errors.New("closed unexpectedly")
	}
	return fmt.Errorf("%w: %s: %w", ErrServe, a.servers[i].Scheme(), err)
}

// stopCause says why phase 5 ended.
type stopCause struct {
	reason string
	err    error // non-nil when a transport failed on its own
	server int   // 1 + the index of that transport; 0 for another cause
}

// runUntilStopped is phase 5: an oklog/run group with one actor per
// transport, the watchdog, the signal handler and the caller's context;
// the first to return ends the phase.
func (a *App) runUntilStopped(ctx context.Context, sw *stopsig.Watcher) stopCause {
	var g run.Group
	var cause stopCause
	var once sync.Once
	set := func(c stopCause) { once.Do(func() { cause = c }) }
	for i, s := range a.servers { // each transport, until it fails on its own
		stop := make(chan struct{})
		g.Add(func() error {
			select {
			case <-a.served[i]:
				err := a.serveFailure(i)
				set(stopCause{reason: s.Scheme() + " server stopped", err: err, server: i + 1})
				return err
			case <-stop:
				return nil
			}
		}, func(error) { close(stop) })
	}
	{ // signals
		stop := make(chan struct{})
		g.Add(func() error {
			select {
			case <-sw.Stop(): // also when it came during the start-up
				set(stopCause{reason: "signal " + sw.First().String()})
			case <-stop:
			}
			return nil
		}, func(error) { close(stop) })
	}
	{ // the caller's context
		stop := make(chan struct{})
		g.Add(func() error {
			select {
			case <-ctx.Done():
				set(stopCause{reason: context.Cause(ctx).Error()}) // "context canceled", or the cause it was given
			case <-stop:
			}
			return nil
		}, func(error) { close(stop) })
	}
	if a.opts.watchdogFailures > 0 && len(a.opts.readiness) > 0 {
		wctx, cancel := context.WithCancel(context.Background())
		g.Add(func() error { a.watchdog(wctx); return nil }, func(error) { cancel() })
	}
	level.Info(a.logger).Log("phase", "run", "ready", true)
	_ = g.Run()
	return cause
}

// shutdown runs phases 6–9. A second signal during 6–8 cancels force,
// which cuts the withdrawal, the grace period and the drain short.
func (a *App) shutdown(cause stopCause, sw *stopsig.Watcher) error {
	// force's cause says why it ended, so a drain cut by the second signal
	// says so rather than reading as a timeout.
	force, forced := context.WithCancelCause(context.Background())
	defer forced(nil)
	var (
		mu        sync.Mutex
		cuttable  = true // until the drain is over
		forcedErr error
	)
	go func() { // owned by shutdown: ends when force is cancelled
		select {
		case <-sw.Force():
			mu.Lock()
			defer mu.Unlock()
			if !cuttable {
				// The release is bounded on its own; exiting before it ends
				// would only leave the registration to its TTL.
				level.Info(a.logger).Log("msg", "second signal after the drain: nothing left to cut short; the release goes on, within "+a.opts.releaseTimeout.String(), "signal", sw.ForcedBy())
				return
			}
			forcedErr = fmt.Errorf("%w (%s)", ErrForced, sw.ForcedBy())
			level.Warn(a.logger).Log("msg", "second signal, forcing exit", "signal", sw.ForcedBy())
			forced(forcedErr)
		case <-force.Done():
		}
	}()

	withdrawErr := a.withdraw(force, cause.reason)
	a.grace(force)
	drainErr := a.drain(force, cause.server-1)
	mu.Lock()
	cuttable, forceErr := false, forcedErr
	mu.Unlock()
	releaseErr := a.release()
	a.stopDebug()
	forced(nil)

	var err error
	switch {
	case forceErr != nil && cause.err != nil:
		// Why the transport stopped is in no other line: keep it, first.
		err = fmt.Errorf("%w; %w", cause.err, forceErr)
	case forceErr != nil:
		err = forceErr
	case cause.err != nil:
		err = cause.err
	case drainErr != nil:
		err = drainErr
	case releaseErr != nil:
		err = releaseErr
	}
	// A record left behind outlives the process, which nothing else here
	// does: a deploy tool must see it in the exit status, not only in a
	// warn line (report j53a F2: it ended err=none, exit 0). It leads the
	// exit line: the lease it left, which release could not revoke either,
	// follows from it.
	switch {
	case withdrawErr != nil && err != nil:
		err = fmt.Errorf("%w; %w", withdrawErr, err)
	case withdrawErr != nil:
		err = withdrawErr
	}
	a.outcome(err).Log("phase", "exit", "err", errString(err))
	return err
}

// withdraw is phase 6: readiness goes 503 before the deregistration, so a
// probe and discovery agree from the first moment. Its error wraps
// ErrWithdraw.
func (a *App) withdraw(force context.Context, reason string) error {
	a.draining.Store(true)
	inst := a.Instance()
	ctx, cancel := context.WithTimeout(force, a.opts.withdrawTimeout)
	defer cancel()
	err := a.registry.Deregister(ctx, inst)
	a.registered.Store(false)
	a.mu.Lock()
	left := a.unwithdrawn
	a.mu.Unlock()
	if err == nil && left != nil {
		err = left // this Deregister found nothing held: that is no withdrawal
	}
	a.outcome(err).Log("phase", "withdraw", "reason", reason, "id", inst.ID, "err", errString(err))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrWithdraw, inst.ID, err)
	}
	return nil
}

// grace is phase 7.
func (a *App) grace(force context.Context) {
	level.Info(a.logger).Log("phase", "grace", "wait", a.opts.grace)
	if a.opts.grace <= 0 {
		return
	}
	t := time.NewTimer(a.opts.grace)
	defer t.Stop()
	select {
	case <-t.C:
	case <-force.Done():
	}
}

// drain is phase 8: every transport drains at once, within one timeout.
// A transport found stopped on its own (in the grace, say) fails the
// drain: clients still routed here meanwhile were refused. reported is
// the index of the one that ended phase 5, whose failure Run returns
// already (-1: none).
func (a *App) drain(force context.Context, reported int) error {
	start := time.Now()
	ctx, cancel := context.WithTimeoutCause(force, a.opts.drain, fmt.Errorf("drain timeout %s reached", a.opts.drain))
	defer cancel()
	errs := make([]error, len(a.servers))
	var wg sync.WaitGroup
	for i, s := range a.servers {
		wg.Add(1)
		go func() { // bounded by ctx: Shutdown returns when it ends
			defer wg.Done()
			select {
			case <-a.served[i]:
				if i != reported {
					errs[i] = fmt.Errorf("stopped on its own before the drain: %w", a.serveFailure(i))
				}
			default:
			}
			if err := s.Shutdown(ctx); err != nil {
				errs[i] = errors.Join(errs[i], fmt.Errorf("%s: %w", s.Scheme(), err))
			}
			<-a.served[i] // its Serve goroutine has returned
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	a.outcome(err).Log("phase", "drain", "took", time.Since(start).Round(time.Microsecond), "err", errString(err))
	return err
}

// release is phase 9: last, so the registration outlives every request
// that might still have been routed to us. The service's own closers
// (clients of other services) go first, in reverse order, then the registry.
func (a *App) release() error {
	start := time.Now()
	done := make(chan error, 1)
	go func() { // bounded below; a hung backend cannot hold the exit
		var errs []error
		for i := len(a.opts.closers) - 1; i >= 0; i-- {
			errs = append(errs, a.opts.closers[i].Close())
		}
		done <- errors.Join(append(errs, a.registry.Close())...)
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(a.opts.releaseTimeout):
		err = fmt.Errorf("release: closers and registry did not return within %s", a.opts.releaseTimeout)
	}
	a.outcome(err).Log("phase", "release", "took", time.Since(start).Round(time.Microsecond), "err", errString(err))
	return err
}

// abort undoes a failed start-up: close every transport (those that did
// not listen yet close as a no-op), then the closers and the registry.
func (a *App) abort() {
	a.draining.Store(true)
	for _, s := range a.servers {
		_ = s.Close()
	}
	a.mu.Lock()
	serving, served := a.serving, a.served
	a.mu.Unlock()
	if serving {
		for _, ch := range served {
			<-ch
		}
	}
	_ = a.release() // logged by release; Run returns the start-up error
	a.stopDebug()
}

// stopDebug closes the debug listener, last, so a scrape can watch the
// whole shutdown.
func (a *App) stopDebug() {
	a.opts.handshakes.Flush() // the last interval's count of failed handshakes, not lost with the process
	a.mu.Lock()
	dbg := a.debug
	a.mu.Unlock()
	if dbg != nil {
		dbg.close()
	}
}

func (a *App) schemes() []string {
	out := make([]string, len(a.servers))
	for i, s := range a.servers {
		out[i] = s.Scheme()
	}
	return out
}

func (a *App) checkRegistered(context.Context) error {
	if a.withdrawn.Load() {
		return errors.New("withdrawn by the watchdog")
	}
	if !a.registered.Load() {
		return errors.New("not registered")
	}
	if sr, ok := a.registry.(registry.StatusReporter); ok {
		if st := sr.Status(); st.State != registry.StateRegistered {
			if st.LastError != "" {
				return fmt.Errorf("%s since %s: %s", st.State, st.Since.Format(time.RFC3339), st.LastError)
			}
			return fmt.Errorf("%s since %s", st.State, st.Since.Format(time.RFC3339))
		}
	}
	return nil
}

func (a *App) checkDraining(context.Context) error {
	if a.draining.Load() {
		return errors.New("draining: shutting down")
	}
	return nil
}

// outcome is the logger of a shutdown phase's line: warn when the phase
// failed (a withdrawal the registry could not confirm leaves the instance
// listed; alerts on warn must see it), info otherwise.
func (a *App) outcome(err error) log.Logger {
	if err != nil {
		return level.Warn(a.logger)
	}
	return level.Info(a.logger)
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
