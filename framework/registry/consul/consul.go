// Package consul is the Consul registry backend: a registry.Registry that
// registers instances with the local Consul agent and discovers them through
// blocking health queries.
//
// # Registering
//
// Register calls the agent's service-register endpoint with the instance's
// ID, name, address, port and tags; Meta carries version, zone, weight,
// scheme and the instance's Metadata. Each instance gets the checks given to
// WithChecks (default: one TTL check), at most one of each kind:
//
//   - TTL (CheckTTL, WithTTLCheck): the Registry sends the service's
//     readiness (UseReadiness) to the agent every TTL/3, "passing" when it
//     returns nil and "critical" with the error text otherwise. A process that
//     stops heartbeating turns critical after one TTL.
//   - HTTP (CheckHTTP, WithHTTPCheck): the agent GETs the instance's HTTP
//     endpoint + /healthz.
//   - TCP (CheckTCP): the agent connects to the instance's address.
//   - gRPC (CheckGRPC): the agent asks grpc.health.v1 on the instance's gRPC
//     endpoint.
//
// An instance without the endpoint a check needs is refused by Register.
// Every check sets DeregisterCriticalServiceAfter, so Consul reaps instances
// that stay critical (a crashed process). Script checks are not offered.
//
// Register returns once the agent has accepted the instance. From then on a
// goroutine owned by the Registry keeps it registered: when the agent
// answers that it does not know the check or service (it restarted, or an
// operator deregistered it), the instance is registered again at once; when
// the agent cannot be reached, the Registry retries forever with jittered
// backoff. Status reports where it stands and how often it had to
// re-register. Deregister stops that goroutine and withdraws the instance;
// Register may be called again afterwards.
//
// # Discovering
//
// Instancer and NewInstancer return an sd.Instancer fed by a goroutine that
// runs blocking Health().Service queries for passing instances; they
// return once the first query has answered (or after WithInitialWait's
// bound), so the first subscriber gets the set at once. Events carry
// registry.Instance strings with the Consul datacenter in Metadata["dc"].
// When a query fails the instancer publishes the last good set together
// with the error, backs off with jitter and tries again. Stop ends the
// goroutine; Close stops every instancer the Registry made.
package consul

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/redact"
)

// ErrClosed is registry.ErrClosed, returned by Register and Instancer after
// Close; kept here so existing errors.Is checks still match.
var ErrClosed = registry.ErrClosed

// Registry is a Consul-backed registry.Registry. Make one with New and Close
// it when done; Close stops every goroutine it started.
type Registry struct {
	cfg config
	// agents, one per address (agents[0] is home), name no datacenter:
	// what the registrar asks about its own registrations goes to the
	// agent's datacenter, where the agent registers them whatever
	// WithDatacenter says. Discovery names WithDatacenter's in each query.
	agents []*api.Client
	// client is the home agent's with WithDatacenter's datacenter, for
	// Client.
	client    *api.Client
	transport *http.Transport
	logger    log.Logger

	// ctx is the parent of every background goroutine; cancel ends them.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// paused stops TTL heartbeats without stopping anything else. Tests use
	// it to play a frozen process.
	paused atomic.Bool
	// dcKnown is set once an agent has listed WithDatacenter's and
	// WithFailover's datacenters (checkDatacenters).
	dcKnown atomic.Bool
	// backs wakes instancers in backoff when an agent answers again for
	// their datacenter.
	backs agentBacks

	mu         sync.Mutex
	closed     bool
	ready      func(context.Context) error
	regs       *registry.Tracker[*registration] // by instance ID, from the start of Register
	ops        map[string]*op                   // the Register or Deregister running per ID
	instancers map[*Instancer]struct{}
	failovers  registry.Failovers // Instancer's with WithFailover
}

var (
	_ registry.Registry       = (*Registry)(nil)
	_ registry.StatusReporter = (*Registry)(nil)
	_ registry.ReadinessAware = (*Registry)(nil)
)

// New returns a Registry talking to the agent chosen by the options. It does
// not contact the agent, so it succeeds while the agent is down; ctx is only
// checked, the Registry's background work lives until Close.
func New(ctx context.Context, opts ...Option) (*Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("consul: new: %w", err)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	for i, c := range cfg.checks {
		if c.Kind == CheckHTTP && c.Path == "" && cfg.healthPath != "" {
			c.Path = cfg.healthPath
		}
		cfg.checks[i] = c.withDefaults()
	}
	if err := validateChecks(cfg.checks); err != nil {
		return nil, fmt.Errorf("consul: new: %w", err)
	}

	if len(cfg.addresses) == 0 {
		return nil, errors.New("consul: new: no agent address")
	}
	transport := cleanhttp.DefaultPooledTransport()
	var agents []*api.Client
	var home *api.Client
	for _, addr := range cfg.addresses {
		if addr == "" {
			return nil, errors.New("consul: new: empty agent address")
		}
		if err := registry.CheckServerAddress(addr); err != nil {
			return nil, fmt.Errorf("consul: new: agent address %q: %w; want host:port or http(s)://host:port", redact.URL(addr), err)
		}
		acfg := &api.Config{
			Address: addr,
			Scheme:  cfg.scheme,
			Token:   cfg.token,
			TLSConfig: api.TLSConfig{
				Address:            cfg.tls.ServerName,
				CAFile:             cfg.tls.CAFile,
				CertFile:           cfg.tls.CertFile,
				KeyFile:            cfg.tls.KeyFile,
				InsecureSkipVerify: cfg.tls.InsecureSkipVerify,
			},
		}
		if acfg.Scheme == "" {
			acfg.Scheme = "http"
			if strings.HasPrefix(addr, "https://") {
				acfg.Scheme = "https"
			}
		}
		tlsConf, err := api.SetupTLSConfig(&acfg.TLSConfig)
		if err != nil {
			return nil, fmt.Errorf("consul: new: TLS: %w", err)
		}
		transport.TLSClientConfig = tlsConf // the same for every agent
		var rt http.RoundTripper = transport
		if cfg.wrapRT != nil {
			rt = cfg.wrapRT(rt)
		}
		acfg.Transport = transport
		acfg.HttpClient = &http.Client{Transport: rt}
		dcfg := *acfg // before NewClient fills in its defaults
		dcfg.Datacenter = cfg.datacenter
		client, err := api.NewClient(acfg)
		if err != nil {
			return nil, fmt.Errorf("consul: new: agent %s: %w", redact.URL(addr), err)
		}
		agents = append(agents, client)
		if home == nil {
			if home, err = api.NewClient(&dcfg); err != nil {
				return nil, fmt.Errorf("consul: new: agent %s: %w", redact.URL(addr), err)
			}
		}
	}

	bg, cancel := context.WithCancel(context.Background())
	return &Registry{
		cfg:        cfg,
		agents:     agents,
		client:     home,
		transport:  transport,
		logger:     log.With(cfg.logger, "component", "consul"),
		ctx:        bg,
		cancel:     cancel,
		regs:       registry.NewTracker[*registration](),
		ops:        map[string]*op{},
		instancers: map[*Instancer]struct{}{},
	}, nil
}

// Client returns the Consul API client of the home agent (the first
// address), for callers that need an endpoint this package does not wrap.
// Its queries go to WithDatacenter's datacenter, when set.
func (r *Registry) Client() *api.Client { return r.client }

// UseReadiness implements registry.ReadinessAware: with a TTL check the
// heartbeat reports passing when ready returns nil and critical with its
// error text otherwise. A nil ready means always ready.
func (r *Registry) UseReadiness(ready func(ctx context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ready = ready
}

// Status implements registry.StatusReporter. With several registrations
// the worst state wins (retrying, then unregistered, then registered);
// withdrawn once every instance was deregistered; Reregistrations counts
// re-registrations of every instance over the Registry's life.
func (r *Registry) Status() registry.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.regs.Status()
}

// Close stops every heartbeat and instancer goroutine, deregisters the
// instances still registered and makes sure the servers dropped them (all
// within the deregister timeout), and releases idle connections. It is
// idempotent; calls after the first return nil.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	regs := r.regs.Close()
	insts := r.instancers
	r.instancers = map[*Instancer]struct{}{}
	r.mu.Unlock()

	// A Failover first: it unsubscribes from its sources while its
	// readers still read, then stops them.
	r.failovers.StopAll()
	for in := range insts {
		in.Stop()
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.deregTimeout)
	defer cancel()
	var errs []error
	var withdrawn []*registration
	r.cancel() // ends every Register still retrying, with ErrClosed
	for _, reg := range regs {
		if reg.cancel == nil {
			continue // a Register still waiting for the agent: it ends with ErrClosed
		}
		reg.stop()
		awayCopies(reg)
		r.withdrawStale(ctx, reg)
		if err := r.deregister(ctx, r.agents[reg.agent], reg.inst.ID); err != nil {
			errs = append(errs, fmt.Errorf("consul: close: deregister %s: %w", reg.inst.ID, err))
			continue
		}
		withdrawn = append(withdrawn, reg)
	}
	// Every agent has been told first: servers that do not answer must not
	// use up the time the other deregistrations need.
	for _, reg := range withdrawn {
		r.confirmWithdrawn(ctx, r.agents[reg.agent], reg.inst, reg.node, reg.mark)
	}
	r.wg.Wait()
	r.transport.CloseIdleConnections()
	return errors.Join(errs...)
}

// setStatus records the state of reg, if it is still the registration of
// its ID, and recomputes the Registry's status. A nil err keeps the
// previous LastError for context.
func (r *Registry) setStatus(reg *registration, state registry.State, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs.Failed(err)
	r.regs.Set(reg.inst.ID, reg, state, nil, false)
}

func (r *Registry) logErr(msg string, keyvals ...any) {
	level.Warn(r.logger).Log(append([]any{"msg", msg}, keyvals...)...)
}

func (r *Registry) logInfo(msg string, keyvals ...any) {
	level.Info(r.logger).Log(append([]any{"msg", msg}, keyvals...)...)
}

// connLimited explains an agent's 429 "too many concurrent connections":
// the agent caps connections per client address
// (limits.http_max_conns_per_client, default 200) and every service a
// process follows holds one blocking query, so a process following ~200
// services (warren page, watch, nginx, xds over a large catalogue) saw
// some services never discovered and only Consul's own text (report
// j50d). Other errors are returned as they are.
func connLimited(err error) error {
	var se api.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || !strings.Contains(se.Body, "concurrent connections") {
		return err
	}
	return fmt.Errorf("%w: the agent caps connections per client address (limits.http_max_conns_per_client, default 200) and each service this process follows holds one; raise it on the agent (docs/production.md, Consul sizing)", err)
}

// statusCode returns the HTTP status of an agent error, or 0.
func statusCode(err error) int {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// Instancer implements registry.Discovery with the Registry's defaults; see
// NewInstancer for per-instancer options. Like NewInstancer it returns once
// the agent has answered, or after the initial wait (WithInitialWait).
//
// With WithFailover the instancer follows the local datacenter first and
// the failover datacenters in order (registry.Failover); one initial wait
// bounds all their first queries.
func (r *Registry) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if len(r.cfg.failover) == 0 {
		in, err := r.NewInstancer(ctx, service)
		if err != nil {
			return nil, err // not a typed nil inside the interface
		}
		return in, nil
	}
	// One initial wait for them all, not one per datacenter.
	deadline := time.Now().Add(r.cfg.initialWait)
	f, err := registry.OpenFailover(1+len(r.cfg.failover), func(i int) (sd.Instancer, error) {
		if i == 0 {
			return r.newInstancer(ctx, deadline, service)
		}
		return r.newInstancer(ctx, deadline, service, Datacenter(r.cfg.failover[i-1]))
	})
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	if err := r.trackFailover(f); err != nil {
		return nil, err
	}
	local := r.cfg.datacenter
	if local == "" {
		local = "local" // the agent's own datacenter
	}
	registry.ReportFailover(f, service, "datacenter", append([]string{local}, r.cfg.failover...), r.logger, r.cfg.observer)
	return f, nil
}

// trackFailover has Close stop f (its readers and sources) unless the
// caller Stops it first; after Close it stops f and returns ErrClosed.
func (r *Registry) trackFailover(f *registry.Failover) error {
	if !r.failovers.Track(f) {
		return fmt.Errorf("%s: %w", "consul registry", ErrClosed)
	}
	return nil
}
