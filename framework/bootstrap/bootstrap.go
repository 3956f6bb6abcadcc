// Package bootstrap is what a service's main needs and nothing more: read
// the configuration (flags and WARREN_* variables), build the logger and
// the registry the configuration names, let the service build its
// transports, and run the lifecycle. A generated main is one call:
//
//	func main() {
//		bootstrap.Main("payment", version, func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Transports, error) {
//			svc := payment.New()
//			return bootstrap.HTTP(payment.NewHTTPHandler(payment.MakeEndpoints(svc), d.Logger)), nil
//		}, bootstrap.WithRegistries(etcd.Backend(), consul.Backend(), memory.Backend()))
//	}
//
// The registry backends are values the main passes in (registry.Backend):
// bootstrap finds the one --registry names in that list and imports none.
package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/snapshot"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tracing"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// ShedWaitingPersist is how long the waiting signal's count must stay
// over --shed-waiting before the instance refuses: long enough that the
// burst a process finds after the OS let it wait is drained, not refused
// (the setting measured in docs/overload.md).
const ShedWaitingPersist = 100 * time.Millisecond

// Deps is what a service's build function gets.
type Deps struct {
	Config config.Config
	Logger log.Logger
	// Discovery finds other services (for typed clients).
	Discovery registry.Discovery
	// AppOptions are added to the lifecycle's options (readiness checks, a
	// watchdog setting, middleware).
	AppOptions []app.Option
	// Metrics is the process's Prometheus registry, served on the debug
	// listener; nil without --debug-listen. A service may add its own
	// series to it.
	Metrics *prometheus.Registry
	// TracerProvider makes the process's spans; a no-op provider (which
	// still passes trace context on) when no exporter is configured.
	TracerProvider trace.TracerProvider
	// Shedder is the HTTP server's load shedder, nil with
	// --load-shedding=false. To exempt routes, add
	// app.WithShedding(d.Shedder, shed.WithExempt("POST /x")) to AppOptions;
	// with --load-shedding=false nothing is shed all the same. Run closes
	// it (the App's release phase, after the drain, or a failed start-up);
	// the build function does not.
	Shedder *shed.Limiter

	clientOpts []client.Option     // metrics, tracing and TLS of calls
	grpcOpts   []grpcserver.Option // metrics and tracing of served gRPC calls
	closers    []io.Closer         // OnClose, in order
}

// ClientOptions returns the client options the configuration implies: the
// logger, a fixed per-attempt timeout if --client-attempt-timeout is set
// (default: the client's adaptive deadline),
// with --snapshot-dir the last-known-good snapshot, and the
// process's metrics, tracing and TLS (docs/observability.md,
// docs/security.md).
func (d *Deps) ClientOptions() []client.Option {
	opts := []client.Option{client.WithLogger(d.Logger)}
	if d.Config.ClientAttemptTimeout > 0 {
		opts = append(opts, client.WithRetry(retry.WithPerAttemptTimeout(d.Config.ClientAttemptTimeout)))
	}
	if d.Config.SnapshotDir != "" {
		opts = append(opts, client.WithSnapshot(d.Config.SnapshotDir))
	}
	return append(opts, d.clientOpts...)
}

// GRPCServerOptions returns the gRPC server options the configuration
// implies beyond those of grpcserver.Settings.Options: the process's
// tracing, a server span per call continuing the caller's trace (with
// --trace-public-endpoint a new trace linked to it), with
// --debug-listen the warren_grpc_server_* series, as the HTTP server has
// (docs/observability.md), and with --load-shedding=false no shedding.
// Generated NewTransports add them after Settings.Options.
func (d *Deps) GRPCServerOptions() []grpcserver.Option { return slices.Clone(d.grpcOpts) }

// OnClose has c closed in the release phase, after in-flight requests
// drained and before the registration is released; closers run in the
// reverse order they were added. They are closed as well when start-up
// fails, also when the build function itself returns an error, so a build
// function never closes what it handed to OnClose.
func (d *Deps) OnClose(c io.Closer) { d.closers = append(d.closers, c) }

// Transports is what a service serves on: its HTTP handler (served with
// the health endpoints, the configured listen address, TLS, metrics and
// tracing) and any other transport servers (gRPC), published together as
// one instance with one endpoint each.
type Transports struct {
	HTTP    http.Handler
	Servers []transport.Server
}

// HTTP returns the Transports of a service served over HTTP only: the
// common case, one line in a main.
func HTTP(h http.Handler) Transports { return Transports{HTTP: h} }

// BuildFunc builds the service's transports. The context ends when
// start-up is abandoned.
type BuildFunc func(ctx context.Context, d *Deps) (Transports, error)

// Option configures Main and Run.
type Option func(*options)

type options struct {
	registries registry.Backends
	defaults   []config.FlagDefault
	settings   []any
}

// WithSettings adds the service's own settings: ptr points to a struct
// whose fields become flags beside the framework's (package settings: a
// `setting` tag names the flag, `help` explains it, the field's value is
// the default), each with a WARREN_* variable and a --config key. The
// struct is filled before the build function runs; a Validate() error
// method refuses bad values at start (exit 2).
func WithSettings(ptr any) Option {
	return func(o *options) { o.settings = append(o.settings, ptr) }
}

// WithRegistries lists the registry backends the program links in; the
// first is the default of --registry. Without it no registry can be opened.
func WithRegistries(backends ...registry.Backend) Option {
	return func(o *options) { o.registries = append(o.registries, backends...) }
}

// WithDefault sets the program's own default for a flag (its name without
// dashes: "listen", "registry"): the WARREN_* variable and the flag still
// win, and --help shows it. A generated main records the choices of
// `svcgen new --port/--registry` this way, not by setting variables.
func WithDefault(flag, value string) Option {
	return func(o *options) { o.defaults = append(o.defaults, config.FlagDefault{Flag: flag, Value: value}) }
}

// ExitWithdrawFailed is the exit status of a service that stopped but
// could not withdraw from discovery (app.ErrWithdraw): its record may stay
// listed until its lease or TTL expires. It wins over 1, since the record
// outlives the process and a launcher may have to act on it.
const ExitWithdrawFailed = 3

// Main runs the service and exits: 0 after a clean shutdown or --help,
// 2 for bad configuration, 3 when the withdraw from discovery failed
// (ExitWithdrawFailed), 1 for anything else. The table --help asks for
// goes to stdout, so `svc --help | grep etcd`
// filters it; a bad flag is reported on stderr.
func Main(service, version string, build BuildFunc, opts ...Option) {
	os.Exit(runWith(context.Background(), service, version, os.Args[1:], os.Stdout, os.Stderr, build, opts...))
}

// Run is Main without the exit, for tests and embedders; it returns the
// exit code. Logs go to logOut, and so does --help's table.
func Run(ctx context.Context, service, version string, args []string, logOut io.Writer, build BuildFunc, opts ...Option) int {
	return runWith(ctx, service, version, args, logOut, logOut, build, opts...)
}

// runWith is Run with --help's table written to helpOut.
func runWith(ctx context.Context, service, version string, args []string, helpOut, logOut io.Writer, build BuildFunc, opts ...Option) int {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, service, version, o, args[1:], helpOut, logOut)
	}
	cfg, err := config.ParseWith(service, version, o.registries, args, helpOut, config.ParseOptions{Defaults: o.defaults, Settings: o.settings,
		Commands: []string{healthcheckSynopsis}})
	switch {
	case errors.Is(err, config.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(logOut, "%s: %v\n", service, err)
		return 2
	}
	// Every line names the instance, so the lines of two instances of a
	// service in one log pipeline can be told apart (report j47c), the
	// exit line of a failed start-up too (report j57b F10). Without --id
	// the ID is known once the App has listened (it holds the port).
	var id instanceID
	id.set(cfg.ID)
	logger := log.With(cfg.Logger(logOut), "id", log.Valuer(id.value))
	if err := run(ctx, cfg, logOut, logger, &id, build); err != nil {
		level.Error(logger).Log("svc", service, "msg", "exit", "err", err)
		if errors.Is(err, app.ErrWithdraw) {
			return ExitWithdrawFailed
		}
		return 1
	}
	return 0
}

// run builds and runs the service; logger carries id=, which id learns
// from the App once it has one.
func run(ctx context.Context, cfg config.Config, logOut io.Writer, logger log.Logger, id *instanceID, build BuildFunc) error {
	deps := &Deps{Config: cfg, Logger: log.With(logger, "svc", cfg.Service)}
	// What this instance runs with beyond the defaults, and from where: a
	// wrong WARREN_DATA_DIR or --etcd-prefix left no trace (report j57b F1,
	// F8). The App writes it once it has the instance's ID, so the line
	// names it; a start that fails earlier has an error naming its flag.
	configLine := append([]any{"phase", "config"}, cfg.Changed()...)
	if len(configLine) == 2 {
		configLine = append(configLine, "changed", "none")
	}
	deps.AppOptions = append(deps.AppOptions, app.WithStartLine(configLine...))
	var regObs registry.Observer
	// The shedder is run's to close until the App owns it (a closer,
	// released after the drain): with --shed-waiting it holds an epoll
	// descriptor, which a failed start left to the garbage collector.
	var shedder *shed.Limiter // the one run made, whatever the build does with Deps
	appOwnsShedder := false
	defer func() {
		if shedder != nil && !appOwnsShedder {
			_ = shedder.Close()
		}
	}()
	{ // metrics, served with pprof (unless --debug-pprof=false) on the debug listener
		if cfg.DebugListen != "" {
			deps.Metrics = metrics.NewRegistry()
			var hopts []metrics.HandlerOption
			if !cfg.DebugProfiles {
				hopts = append(hopts, metrics.WithoutProfiles())
			}
			served := metrics.NewServer(deps.Metrics)
			deps.AppOptions = append(deps.AppOptions,
				app.WithDebugListener(cfg.DebugListen, metrics.Handler(deps.Metrics, hopts...)),
				app.WithDebugAllowedHosts(cfg.DebugAllowedHosts...),
				app.WithHTTPMiddleware(served.Middleware))
			deps.grpcOpts = append(deps.grpcOpts, grpcserver.WithUnaryInterceptors(served.UnaryServerInterceptor()))
			deps.clientOpts = append(deps.clientOpts, client.WithObserver(metrics.NewClient(deps.Metrics)))
			regObs = metrics.NewDiscovery(deps.Metrics)
			// Failed TLS handshakes: throttled in the log, each counted here.
			handshakes := transport.NewHandshakeLog(deps.Logger, transport.DefaultHandshakeLogEvery)
			metrics.NewHandshakes(deps.Metrics, handshakes)
			deps.AppOptions = append(deps.AppOptions, app.WithHandshakeLog(handshakes))
		}
	}
	{ // load shedding: refuse at once what the instance cannot serve in time
		if cfg.LoadShedding {
			opts := []shed.Option{shed.WithLogger(deps.Logger, shed.DefaultLogEvery)}
			if cfg.ShedWaiting > 0 {
				opts = append(opts, shed.WithWaitingTarget(cfg.ShedWaiting, ShedWaitingPersist))
			}
			l, err := shed.New(opts...)
			if err != nil {
				return err
			}
			shedder, deps.Shedder = l, l
			deps.AppOptions = append(deps.AppOptions, app.WithShedding(deps.Shedder))
			if deps.Metrics != nil {
				metrics.NewShed(deps.Metrics, deps.Shedder)
			}
		} else {
			// Every transport: a gRPC server given no shedder (d.Shedder
			// is nil) makes one of its own. The App gets WithoutShedding
			// again after the build's options (below).
			deps.AppOptions = append(deps.AppOptions, app.WithoutShedding())
			deps.grpcOpts = append(deps.grpcOpts, grpcserver.WithoutShedding())
		}
	}
	{ // tracing: spans for served requests and for calls, W3C propagation
		var stdout io.Writer
		if cfg.TraceStdout {
			stdout = logOut
		}
		tp, shutdown, err := tracing.NewProvider(ctx, tracing.Config{
			Service: cfg.Service, Version: cfg.Version, InstanceID: cfg.ID,
			OTLPEndpoint: cfg.OTLPEndpoint, Stdout: stdout, SampleRatio: cfg.TraceSampleRatio,
			Logger: deps.Logger, // export failures as the service's own log lines
		})
		if err != nil {
			return err
		}
		defer func() { // after the lifecycle: flush what the drain produced
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := shutdown(sctx); err != nil {
				level.Warn(logger).Log("svc", cfg.Service, "msg", "trace export on exit", "err", err)
			}
		}()
		prop := tracing.Propagator()
		var served []tracing.ServerOption
		if cfg.TracePublicEndpoint { // outside callers: their trace context is not followed
			served = append(served, tracing.WithPublicEndpoint())
		}
		deps.TracerProvider = tp
		deps.AppOptions = append(deps.AppOptions, app.WithHTTPMiddleware(tracing.Server(tp, prop, served...)))
		deps.clientOpts = append(deps.clientOpts, client.WithRoundTripper(tracing.Transport(tp, prop)), client.WithTracerProvider(tp),
			client.WithPropagator(prop)) // gRPC attempts (grpcclient)
		deps.grpcOpts = append(deps.grpcOpts, grpcserver.WithTracing(tp, prop, served...))
	}
	{ // TLS between services: HTTPS, mTLS with --tls-client-ca
		// The server's files first: an operator who gave --tls-cert is
		// told about the service's certificate, not about "client TLS".
		var srv *tls.Config
		if cfg.TLSCert != "" {
			var err error
			if srv, err = tlsconf.Server(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA); err != nil {
				// Names where each file's flag was set, as a value
				// Parse refuses does: (from WARREN_TLS_CERT), (key … of FILE).
				return cfg.NameSources(fmt.Errorf("config: the service's TLS (--tls-cert, --tls-key, --tls-client-ca): %w", err))
			}
		}
		cli, err := cfg.TLSClient().Config()
		if err != nil {
			return cfg.NameSources(err)
		}
		if cli != nil { // a CA or a certificate: calls verify, and present it
			deps.clientOpts = append(deps.clientOpts, client.WithTLS(cli))
			if cfg.TLSPlaintextPeers {
				deps.clientOpts = append(deps.clientOpts, client.WithPlaintextPeers())
			}
			if srv != nil {
				deps.AppOptions = append(deps.AppOptions, app.WithTLS(srv), app.WithSelfCheckTLS(cli))
			}
		}
	}
	if cfg.SnapshotDir != "" { // before the registry is opened; a bad one exits 1, as --data-dir does
		if err := snapshot.CheckDir(cfg.SnapshotDir); err != nil {
			return cfg.NameSources(fmt.Errorf("config: --snapshot-dir %q: cannot write snapshots there: %w", cfg.SnapshotDir, err))
		}
	}
	reg, err := openRegistry(ctx, cfg, logger, regObs)
	if err != nil {
		if prefix := cfg.Registry + " registry"; !strings.HasPrefix(err.Error(), prefix) { // backends name themselves
			err = fmt.Errorf("%s: %w", prefix, err)
		}
		return err
	}
	deps.Discovery = reg
	if sr, ok := reg.(registry.StatusReporter); ok && deps.Metrics != nil {
		metrics.RegisterStatus(deps.Metrics, cfg.Service, sr)
	}
	ts, err := build(ctx, deps)
	if err != nil {
		return errors.Join(fmt.Errorf("build %s: %w", cfg.Service, err), closeAll(deps.closers, reg))
	}
	opts := cfg.AppOptions(logger)
	if shedder != nil {
		// Released after the drain (no server counts with it any more)
		// and on a failed start-up; the first closer, so closed after
		// the service's own (newest first).
		opts = append(opts, app.WithCloser(shedder))
	}
	opts = append(opts, deps.AppOptions...)
	if !cfg.LoadShedding {
		// The flag wins over a build that exempts routes as Deps.Shedder
		// says, app.WithShedding(d.Shedder, …): with d.Shedder nil that
		// is the default limiter, and shedding came back on.
		opts = append(opts, app.WithoutShedding())
	}
	for _, s := range ts.Servers {
		opts = append(opts, app.WithServer(s))
	}
	for _, c := range deps.closers {
		opts = append(opts, app.WithCloser(c))
	}
	a, err := app.New(cfg.Service, ts.HTTP, reg, opts...)
	if err != nil {
		return errors.Join(err, closeAll(deps.closers, reg))
	}
	id.app.Store(a)
	appOwnsShedder = true
	return a.Run(ctx) // from here the App closes them, also when start-up fails
}

// instanceID is the log's id= value: --id, else the App's instance ID once
// it has one, kept so that each line costs one atomic load.
type instanceID struct {
	known atomic.Pointer[string]
	app   atomic.Pointer[app.App]
}

func (i *instanceID) set(id string) {
	if id != "" {
		i.known.Store(&id)
	}
}

func (i *instanceID) value() any {
	if p := i.known.Load(); p != nil {
		return *p
	}
	if a := i.app.Load(); a != nil {
		if id := a.Instance().ID; id != "" {
			i.set(id)
			return id
		}
	}
	return "-" // not listening yet: the ID holds the port
}

// closeAll closes what a failed start-up leaves behind: the closers in
// reverse order, then the registry, and reports every failure.
func closeAll(closers []io.Closer, reg io.Closer) error {
	var errs []error
	for i := len(closers) - 1; i >= 0; i-- {
		if err := closers[i].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close on failed start-up: %w", err))
		}
	}
	if err := reg.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close registry on failed start-up: %w", err))
	}
	return errors.Join(errs...)
}

// healthcheckSynopsis is the healthcheck command's line in the usage text.
const healthcheckSynopsis = "healthcheck [flags]\texit 0 when this host's instance is ready (GET /readyz on --listen's port; --exclude registered leaves the registration out): a container health check"

// healthcheck is `SERVICE healthcheck [--exclude CHECK] [flags]`: GET
// /readyz on the configured listen address of this host (loopback when
// --listen has no host or an unspecified one), exit 0 when ready.
// Container images without a shell or curl use it as their HEALTHCHECK.
// --exclude CHECK (repeatable, or comma-separated) asks
// /readyz?exclude=CHECK, so a probe that must not follow the registry
// (docs/lifecycle.md: a container engine's health check) passes
// --exclude registered. With --tls-cert it speaks HTTPS and presents that
// certificate, so it passes a server that requires client certificates;
// the server's certificate is not verified (it is this host's own
// service).
func healthcheck(ctx context.Context, service, version string, o options, args []string, helpOut, out io.Writer) int {
	args, excluded, err := healthcheckExcludes(args)
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 2
	}
	// The same defaults as the service, so it probes the port the
	// service listens on.
	cfg, err := config.ParseWith(service, version, o.registries, args, helpOut, config.ParseOptions{Defaults: o.defaults, Settings: o.settings,
		Command: "healthcheck"})
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprintf(helpOut, "\n%s healthcheck asks GET /readyz of this host's instance at --listen (127.0.0.1 when --listen names no single address; HTTPS with --tls-cert) and exits 0 when it is ready, 1 when not, 2 on bad flags: the health check of a container without a shell.\n", service)
		fmt.Fprintf(helpOut, "\n--exclude CHECK (repeatable, or comma-separated; a flag of healthcheck only, no variable) asks GET /readyz?exclude=CHECK: that check is left out of the answer, the others (draining included) still count. A container engine's health check should pass --exclude registered with an etcd, Consul or ZooKeeper registry, so a registry outage does not turn every container unhealthy at once (docs/lifecycle.md); not with the kubernetes registry, where the registration is the readiness. A check the instance does not have makes healthcheck exit 2.\n")
		return 0
	}
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 2
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "0" {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, cfg.NameSources(fmt.Errorf("--listen %q has no fixed port to probe", cfg.Listen)))
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	scheme, hc := "http", &http.Client{}
	if cfg.TLSCert != "" {
		tc, err := tlsconf.Client("", cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			err = fmt.Errorf("the service's TLS (--tls-cert, --tls-key): %w", err)
			fmt.Fprintf(out, "%s healthcheck: %v\n", service, cfg.NameSources(err))
			return 2
		}
		tc.InsecureSkipVerify = true //nolint:gosec // our own process on this host
		scheme, hc = "https", &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	}
	target := scheme + "://" + net.JoinHostPort(probeHost(host), port) + "/readyz"
	if len(excluded) > 0 {
		q := url.Values{"exclude": excluded}
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 1
	}
	resp, err := hc.Do(req)
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if scheme == "http" && bytes.Contains(body, []byte(`"https_required"`)) {
			fmt.Fprintf(out, "%s healthcheck: the instance speaks HTTPS: give healthcheck the service's --tls-cert and --tls-key (or their WARREN_* variables)\n", service)
			return 1
		}
		if resp.StatusCode == http.StatusBadRequest && bytes.Contains(body, []byte(`"unknown_check"`)) {
			fmt.Fprintf(out, "%s healthcheck: --exclude: %s\n", service, bytes.TrimSpace(body))
			return 2
		}
		fmt.Fprintf(out, "%s healthcheck: not ready: %s %s\n", service, resp.Status, body)
		return 1
	}
	return 0
}

// probeHost is where healthcheck finds the instance: the host of --listen
// when it names one address (a service on [::1] or 10.0.0.5 does not
// answer on 127.0.0.1), loopback when it listens on every address.
func probeHost(listenHost string) string {
	if ip := net.ParseIP(listenHost); listenHost == "" || (ip != nil && ip.IsUnspecified()) {
		return "127.0.0.1"
	}
	return listenHost
}

// healthcheckExcludes takes --exclude CHECK / --exclude=CHECK (one or two
// dashes, repeatable, comma-separated names) out of args: it is a flag of
// the healthcheck command only, not a setting of the service, so it never
// reaches the service's flag set, variables or --config file. Arguments
// after "--" are left alone.
func healthcheckExcludes(args []string) (rest, excluded []string, err error) {
	add := func(v string) error {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n == "" {
				return fmt.Errorf("--exclude %q: want a check name (registered, draining, or one of the service's)", v)
			}
			excluded = append(excluded, n)
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "exclude" {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return nil, nil, errors.New("--exclude needs a check name (--exclude registered)")
			}
			i++
			value = args[i]
		}
		if err := add(value); err != nil {
			return nil, nil, err
		}
	}
	return rest, excluded, nil
}

// OpenRegistry connects to the registry cfg names.
func OpenRegistry(ctx context.Context, cfg config.Config, logger log.Logger) (registry.Registry, error) {
	return openRegistry(ctx, cfg, logger, nil)
}

// openRegistry is OpenRegistry reporting discovery to obs (nil: nowhere).
func openRegistry(ctx context.Context, cfg config.Config, logger log.Logger, obs registry.Observer) (registry.Registry, error) {
	return cfg.OpenRegistry(ctx, registry.OpenOptions{
		Logger:   log.With(logger, "svc", cfg.Service, "registry", cfg.Registry),
		Observer: obs,
	})
}
