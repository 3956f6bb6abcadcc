// Package app runs a Warren service's lifecycle. Run goes through the
// phases in order, each a named method in this file:
//
//  1. listen      bind the listen address (port 0 allowed)
//  2. serve       start answering HTTP: /healthz, /readyz and the service
//  3. selfcheck   GET /healthz through the advertised address and check the
//     answer came from this process, so a wrong address fails start-up
//     instead of publishing an instance nobody can reach
//  4. register    publish the instance; readiness turns green
//  5. run         until SIGTERM/SIGINT or ctx ends (watchdog meanwhile)
//  6. withdraw    readiness 503 and deregister, so clients stop picking us
//  7. grace       keep serving while the withdrawal propagates
//  8. drain       http.Server.Shutdown: finish in-flight requests
//  9. release     close the registry (revoke leases, close clients)
//
// A second signal during 6–8 forces exit. See docs/lifecycle.md for why the
// order is what it is.
package app

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/oklog/run"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
)

// Errors Run can return; each is wrapped with detail.
var (
	// ErrAlreadyRun means Run was called a second time on one App.
	ErrAlreadyRun = errors.New("app: Run called twice")
	// ErrSelfCheck means the advertised address did not reach this process.
	ErrSelfCheck = errors.New("self-check failed")
	// ErrRegister means the first registration failed.
	ErrRegister = errors.New("registration failed")
	// ErrForced means a second signal cut the graceful shutdown short.
	ErrForced = errors.New("forced exit on second signal")
	// ErrDrainTimeout means in-flight requests were still running when the
	// drain timeout ran out; their connections were closed.
	ErrDrainTimeout = errors.New("drain timed out")
	// ErrServe means the HTTP server stopped on its own.
	ErrServe = errors.New("http server failed")
)

// selfCheckHeader carries a per-process nonce: the health handler echoes
// it, so the self-check proves the advertised address reaches this very
// process and not another one that happens to answer there.
const selfCheckHeader = "X-Warren-Selfcheck"

// App is one service process. Build it with New and call Run once.
type App struct {
	name     string
	handler  http.Handler
	registry registry.Registry
	opts     options
	logger   log.Logger
	nonce    string

	live, ready *health.Set
	own         *health.Set // the service's own readiness checks only

	started    atomic.Bool
	draining   atomic.Bool
	registered atomic.Bool // our view, for registries without StatusReporter
	withdrawn  atomic.Bool // set by the watchdog
	inFlight   atomic.Int64

	mu       sync.Mutex
	ln       net.Listener
	srv      *http.Server
	debug    *debugServer
	inst     registry.Instance
	served   chan struct{} // closed when the serve goroutine returns
	serveErr error         // why it returned; read after served is closed
	readyCh  chan struct{}
}

// New declares a service. name must be a valid service name
// (registry.ValidName); handler serves everything but /healthz and /readyz;
// reg is owned by the App from here on: Run closes it in its last phase.
func New(name string, handler http.Handler, reg registry.Registry, opts ...Option) (*App, error) {
	if !registry.ValidName(name) {
		return nil, fmt.Errorf("app: service name %q: %w", name, registry.ErrInvalidInstance)
	}
	if handler == nil {
		return nil, errors.New("app: nil handler")
	}
	if reg == nil {
		return nil, errors.New("app: nil registry")
	}
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if o.weight < 0 {
		return nil, fmt.Errorf("app: negative weight %d", o.weight)
	}
	var nb [8]byte
	_, _ = rand.Read(nb[:])
	a := &App{
		name:     name,
		handler:  handler,
		registry: reg,
		opts:     o,
		logger:   log.With(o.logger, "svc", name),
		nonce:    hex.EncodeToString(nb[:]),
		live:     health.NewSet(0),
		ready:    health.NewSet(0),
		own:      health.NewSet(0),
		served:   make(chan struct{}),
		readyCh:  make(chan struct{}),
	}
	a.ready.Add("registered", a.checkRegistered)
	a.ready.Add("draining", a.checkDraining)
	for n, c := range o.readiness {
		a.ready.Add(n, c)
		a.own.Add(n, c)
	}
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
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(sigs)
	}

	if err := a.listen(); err != nil {
		return err
	}
	a.serve()
	if err := a.selfCheck(ctx); err != nil {
		a.abort()
		return err
	}
	if err := a.register(ctx); err != nil {
		a.abort()
		return err
	}
	cause := a.runUntilStopped(ctx, sigs)
	return a.shutdown(cause, sigs)
}

// listen is phase 1.
func (a *App) listen() error {
	ln, err := net.Listen("tcp", a.opts.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.opts.listen, err)
	}
	inst, err := a.instanceFor(ln.Addr().(*net.TCPAddr))
	if err != nil {
		ln.Close()
		return err
	}
	if a.opts.tls != nil {
		ln = tls.NewListener(ln, a.opts.tls)
	}
	var dbg *debugServer
	if a.opts.debugHandler != nil {
		if dbg, err = startDebug(a.opts.debugAddr, a.opts.debugHandler, a.opts.readHeader, a.opts.idle); err != nil {
			ln.Close()
			return err
		}
	}
	if dbg != nil {
		// Published with the instance, so Prometheus (or make up) can find
		// every scrape target through the same discovery as the traffic.
		inst.Metadata = maps.Clone(inst.Metadata)
		if inst.Metadata == nil {
			inst.Metadata = map[string]string{}
		}
		inst.Metadata[MetricsMetadataKey] = "http://" + debugHostPort(dbg.ln.Addr().(*net.TCPAddr), inst.Host()) + "/metrics"
	}
	a.mu.Lock()
	a.ln, a.inst, a.debug = ln, inst, dbg
	a.mu.Unlock()
	kv := []any{"phase", "listen", "addr", ln.Addr().String(), "advertise", strings.Join(inst.Endpoints, ",")}
	if dbg != nil {
		kv = append(kv, "debug", inst.Metadata[MetricsMetadataKey])
	}
	level.Info(a.logger).Log(kv...)
	return nil
}

// MetricsMetadataKey is the instance metadata key under which a service
// with a debug listener publishes its /metrics URL.
const MetricsMetadataKey = "metrics"

// debugHostPort is the debug listener's address as others reach it: its
// own IP when bound to one, else the advertised host.
func debugHostPort(addr *net.TCPAddr, advertised string) string {
	host := advertised
	if !addr.IP.IsUnspecified() {
		host = addr.IP.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(addr.Port))
}

// serve is phase 2: the server answers from here on, so the self-check
// and the registry's HTTP checks can reach /healthz.
func (a *App) serve() {
	mux := http.NewServeMux()
	extra := func(h http.Header) map[string]any {
		return map[string]any{"service": a.name, "version": a.opts.version, "instance": a.inst.ID}
	}
	live := health.Handler(a.live, extra)
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(selfCheckHeader) != "" {
			w.Header().Set(selfCheckHeader, a.nonce)
		}
		live.ServeHTTP(w, r)
	}))
	mux.Handle("GET /readyz", health.Handler(a.ready, extra))
	var svc http.Handler = a.handler
	for _, mw := range a.opts.middleware {
		svc = mw(svc)
	}
	mux.Handle("/", a.countInFlight(svc))

	srv := &http.Server{
		Handler:           httptransport.Handler(mux, a.logger, a.opts.maxBody),
		ReadHeaderTimeout: a.opts.readHeader,
		IdleTimeout:       a.opts.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          nil,
	}
	a.mu.Lock()
	a.srv = srv
	ln := a.ln
	a.mu.Unlock()
	go func() { // owned by the App: ends when srv is shut down or closed
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		a.serveErr = err
		close(a.served)
	}()
	level.Info(a.logger).Log("phase", "serve", "health", "/healthz", "ready", "/readyz")
}

// selfCheck is phase 3.
func (a *App) selfCheck(ctx context.Context) error {
	if !a.opts.selfCheck {
		level.Info(a.logger).Log("phase", "selfcheck", "skipped", "disabled by option")
		return nil
	}
	inst := a.Instance()
	url := inst.Endpoints[0] + "/healthz"
	ctx, cancel := context.WithTimeout(ctx, a.opts.selfCheckTimeout)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: a.selfCheckTLS()}}
	start := time.Now()
	var lastErr error
	for attempt := 1; ; attempt++ {
		lastErr = a.probe(ctx, client, url)
		if lastErr == nil {
			level.Info(a.logger).Log("phase", "selfcheck", "url", url, "took", time.Since(start).Round(time.Microsecond), "attempts", attempt)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: advertised address %s did not reach this process (listening on %s) within %s: %w; "+
				"set the advertised address to one that reaches this process, or turn the self-check off on networks without hairpin routing",
				ErrSelfCheck, inst.HostPort(), a.ln.Addr(), a.opts.selfCheckTimeout, lastErr)
		case <-time.After(min(50*time.Millisecond*time.Duration(attempt), 500*time.Millisecond)):
		}
	}
}

// selfCheckTLS is the self-check's client TLS configuration (nil for
// plain HTTP); see WithSelfCheckTLS.
func (a *App) selfCheckTLS() *tls.Config {
	switch {
	case a.opts.tls == nil:
		return nil
	case a.opts.selfCheckTLS != nil:
		return a.opts.selfCheckTLS
	}
	return &tls.Config{
		GetClientCertificate: selfCert(a.opts.tls),
		// The nonce, not the certificate, proves that this process
		// answered; see WithSelfCheckTLS.
		InsecureSkipVerify: true, //nolint:gosec // identity is checked by the nonce
		MinVersion:         tls.VersionTLS12,
	}
}

func (a *App) probe(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set(selfCheckHeader, "1")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s answered %s", url, resp.Status)
	case resp.Header.Get(selfCheckHeader) != a.nonce:
		return fmt.Errorf("GET %s was answered by another process", url)
	}
	return nil
}

// register is phase 4.
func (a *App) register(ctx context.Context) error {
	inst := a.Instance()
	ctx, cancel := context.WithTimeout(ctx, a.opts.registerTimeout)
	defer cancel()
	start := time.Now()
	if err := a.registry.Register(ctx, inst); err != nil {
		return fmt.Errorf("%w: %s at %s: %w", ErrRegister, inst.ID, inst.HostPort(), err)
	}
	a.registered.Store(true)
	close(a.readyCh)
	level.Info(a.logger).Log("phase", "register", "id", inst.ID, "addr", inst.HostPort(), "took", time.Since(start).Round(time.Microsecond))
	return nil
}

// stopCause says why phase 5 ended.
type stopCause struct {
	reason string
	err    error // non-nil when the server failed on its own
}

// runUntilStopped is phase 5: an oklog/run group of the server, the
// watchdog, the signal handler and the caller's context; the first to
// return ends the phase.
func (a *App) runUntilStopped(ctx context.Context, sigs <-chan os.Signal) stopCause {
	var g run.Group
	var cause stopCause
	var once sync.Once
	set := func(c stopCause) { once.Do(func() { cause = c }) }
	{ // the server, until it fails on its own
		stop := make(chan struct{})
		g.Add(func() error {
			select {
			case <-a.served:
				err := a.serveErr
				if err == nil {
					err = errors.New("closed unexpectedly")
				}
				set(stopCause{reason: "server stopped", err: fmt.Errorf("%w: %w", ErrServe, err)})
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
			case s := <-sigs:
				set(stopCause{reason: "signal " + s.String()})
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
				set(stopCause{reason: "context " + ctx.Err().Error()})
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

// shutdown runs phases 6–9. A second signal cancels force, which cuts the
// grace period and the drain short.
func (a *App) shutdown(cause stopCause, sigs <-chan os.Signal) error {
	force, forced := context.WithCancel(context.Background())
	defer forced()
	var forcedBy atomic.Value
	go func() { // owned by shutdown: ends when force is cancelled
		select {
		case s := <-sigs:
			forcedBy.Store(s.String())
			level.Warn(a.logger).Log("msg", "second signal, forcing exit", "signal", s)
			forced()
		case <-force.Done():
		}
	}()

	a.withdraw(force, cause.reason)
	a.grace(force)
	drainErr := a.drain(force)
	a.release()
	a.stopDebug()
	forced()

	var err error
	switch {
	case forcedBy.Load() != nil:
		err = fmt.Errorf("%w (%s)", ErrForced, forcedBy.Load())
	case cause.err != nil:
		err = cause.err
	case drainErr != nil:
		err = drainErr
	}
	level.Info(a.logger).Log("phase", "exit", "err", errString(err))
	return err
}

// withdraw is phase 6: readiness goes 503 before the deregistration, so a
// probe and discovery agree from the first moment.
func (a *App) withdraw(force context.Context, reason string) {
	a.draining.Store(true)
	inst := a.Instance()
	ctx, cancel := context.WithTimeout(force, a.opts.withdrawTimeout)
	defer cancel()
	err := a.registry.Deregister(ctx, inst)
	a.registered.Store(false)
	level.Info(a.logger).Log("phase", "withdraw", "reason", reason, "id", inst.ID, "err", errString(err))
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

// drain is phase 8.
func (a *App) drain(force context.Context) error {
	start := time.Now()
	inFlight := a.inFlight.Load()
	ctx, cancel := context.WithTimeout(force, a.opts.drain)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if err != nil {
		left := a.inFlight.Load()
		a.srv.Close()
		err = fmt.Errorf("%w: %d request(s) still in flight after %s: %w", ErrDrainTimeout, left, time.Since(start).Round(time.Millisecond), err)
	}
	<-a.served // the serve goroutine has returned
	level.Info(a.logger).Log("phase", "drain", "in_flight_at_start", inFlight, "took", time.Since(start).Round(time.Microsecond), "err", errString(err))
	return err
}

// release is phase 9: last, so the registration outlives every request
// that might still have been routed to us. The service's own closers
// (clients of other services) go first, then the registry.
func (a *App) release() {
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
		err = fmt.Errorf("registry close did not return within %s", a.opts.releaseTimeout)
	}
	level.Info(a.logger).Log("phase", "release", "took", time.Since(start).Round(time.Microsecond), "err", errString(err))
}

// abort undoes a failed start-up: stop serving and close the registry.
func (a *App) abort() {
	a.draining.Store(true)
	if a.srv != nil {
		a.srv.Close()
		<-a.served
	}
	a.release()
	a.stopDebug()
}

// stopDebug closes the debug listener, last, so a scrape can watch the
// whole shutdown.
func (a *App) stopDebug() {
	a.mu.Lock()
	dbg := a.debug
	a.mu.Unlock()
	if dbg != nil {
		dbg.close()
	}
}

// watchdog withdraws the instance after watchdogFailures consecutive
// failures of the service's own readiness checks and registers it again
// once they pass, so a deadlocked handler or a dead dependency stops
// attracting traffic without a restart.
func (a *App) watchdog(ctx context.Context) {
	t := time.NewTicker(a.opts.watchdogInterval)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if a.draining.Load() {
			return
		}
		err := a.ownReadiness(ctx)
		switch {
		case err != nil:
			fails++
			if fails == a.opts.watchdogFailures && !a.withdrawn.Load() {
				a.watchdogWithdraw(ctx, err)
			}
		case a.withdrawn.Load():
			fails = 0
			a.watchdogRestore(ctx)
		default:
			fails = 0
		}
	}
}

func (a *App) watchdogWithdraw(ctx context.Context, cause error) {
	inst := a.Instance()
	c, cancel := context.WithTimeout(ctx, a.opts.withdrawTimeout)
	defer cancel()
	err := a.registry.Deregister(c, inst)
	a.withdrawn.Store(true)
	a.registered.Store(false)
	level.Warn(a.logger).Log("msg", "watchdog withdrew instance", "failures", a.opts.watchdogFailures, "cause", cause, "err", errString(err))
}

func (a *App) watchdogRestore(ctx context.Context) {
	inst := a.Instance()
	c, cancel := context.WithTimeout(ctx, a.opts.registerTimeout)
	defer cancel()
	if err := a.registry.Register(c, inst); err != nil {
		level.Warn(a.logger).Log("msg", "watchdog could not register again", "err", err)
		return
	}
	a.withdrawn.Store(false)
	a.registered.Store(true)
	level.Info(a.logger).Log("msg", "watchdog restored instance", "id", inst.ID)
}

// ownReadiness runs the service's own checks plus draining: what the
// service says about itself, without the registration (which depends on it).
func (a *App) ownReadiness(ctx context.Context) error {
	if a.draining.Load() {
		return errors.New("draining")
	}
	if rep := a.own.Run(ctx); !rep.OK() {
		failed := rep.Failed()
		return fmt.Errorf("readiness check %q failed: %s", failed[0], rep.Checks[failed[0]].Detail)
	}
	return nil
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

func (a *App) countInFlight(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.inFlight.Add(1)
		defer a.inFlight.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// instanceFor builds the published instance from the options and the real
// listen address.
func (a *App) instanceFor(addr *net.TCPAddr) (registry.Instance, error) {
	host, port, err := advertised(a.opts.advertise, addr)
	if err != nil {
		return registry.Instance{}, err
	}
	scheme := "http"
	if a.opts.tls != nil {
		scheme = "https"
	}
	id := a.opts.id
	if id == "" {
		id = registry.DefaultID(a.name, host, port)
	}
	inst := registry.Instance{
		ID: id, Name: a.name, Endpoints: []string{registry.EndpointURL(scheme, host, port)},
		Version: a.opts.version, Zone: a.opts.zone, Weight: a.opts.weight,
		Tags: a.opts.tags, Metadata: a.opts.metadata,
	}
	if err := inst.Validate(); err != nil {
		return registry.Instance{}, fmt.Errorf("app: %w", err)
	}
	return inst, nil
}

// advertised resolves the advertised host and port.
func advertised(adv string, addr *net.TCPAddr) (string, int, error) {
	host, port := "", 0
	if adv != "" {
		h, p, err := net.SplitHostPort(adv)
		if err != nil {
			h, p = adv, "" // a bare host (or IPv6 literal) without a port
		}
		host = h
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 65535 {
				return "", 0, fmt.Errorf("app: advertised address %q: bad port %q", adv, p)
			}
			port = n
		}
	}
	if port == 0 {
		port = addr.Port
	}
	if host == "" {
		if !addr.IP.IsUnspecified() {
			host = addr.IP.String()
		} else {
			host = firstInterfaceAddr()
		}
	}
	return host, port, nil
}

// firstInterfaceAddr is the default advertised host of a process listening
// on all interfaces: the first non-loopback unicast IPv4 address, else
// loopback (a single machine).
func firstInterfaceAddr() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

func errString(err error) string {
	if err == nil {
		return "none"
	}
	return err.Error()
}
