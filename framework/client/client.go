// Package client calls other Warren services: discovery, load balancing,
// retries with a budget, outlier ejection and an optional on-disk snapshot
// of the last good instance set, behind a typed call:
//
//	users, err := client.New(ctx, reg, "user")
//	...
//	u, err := client.Call[GetUserRequest, User](ctx, users, "GET", "/users/"+url.PathEscape(id), GetUserRequest{})
//
// A Client holds one HTTP transport per instance (connections are reused
// and an instance's connections close when it leaves discovery and its last
// call returns) and is safe for concurrent use. Close it when done.
//
// Server errors come back as *Error with the status and the server's
// {"error", "code"}; retried calls fail with a *retry.Error wrapping every
// attempt, so errors.As(err, &clientErr) works either way.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/endpointer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/snapshot"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/tcpopt"
)

// ErrClosed is returned (wrapped) by calls on a closed Client. It is
// registry.ErrClosed, Warren's one "used after Close" error.
var ErrClosed = registry.ErrClosed

// CodeUnreachable is the code of ErrUnreachable.
const CodeUnreachable = "unreachable"

// ErrUnreachable matches (errors.Is) a call that got no answer from any
// instance: every attempt was refused, reset or cut, or found no instance.
// Its kind is svcerr.Unavailable, as a gRPC client's UNAVAILABLE is, so a
// service that returns it answers 503 (not 500 "internal error", which
// callers would hold against that service's instance), and fallbacks
// cover it. The attempts' errors stay wrapped (errors.Is/As, and the
// text, for the logs; svcerr.Public leaves them out). A call cut by its
// deadline or cancelled is not it: that stays a context error.
//
// "No answer" is not "not acted on": an attempt whose connection was reset
// or cut after the request went out may have been acted on, and a plain
// POST is then not safe to send again. Unprocessed tells the two apart;
// the message says it too ("service NAME unreachable" when no attempt can
// have reached a handler, "service NAME did not answer" otherwise).
var ErrUnreachable = svcerr.New(svcerr.Unavailable, CodeUnreachable, "service unreachable")

// unreachable gives a failed call that has no kind of its own — no
// instance answered — the kind ErrUnreachable has.
func (c *Client) unreachable(ctx context.Context, err error) error {
	var se *svcerr.Error
	var de *decodeErr
	switch {
	case err == nil, errors.As(err, &se), errors.As(err, &de),
		errors.Is(err, ErrClosed), errors.Is(err, ErrResponseTooLarge):
		return err
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// The caller's own deadline or cancel: said as such, and of which
		// service (net/http's message names only an address). Only with
		// the context done: a dialer's own timeout Is DeadlineExceeded
		// too, and is the service not answering.
		return fmt.Errorf("client %s: %w", c.service, err)
	}
	if !Unprocessed(err) {
		return svcerr.Wrap(svcerr.Unavailable, CodeUnreachable, "service "+c.service+" did not answer", err)
	}
	return svcerr.Wrap(svcerr.Unavailable, CodeUnreachable, "service "+c.service+" unreachable", err)
}

// Unprocessed reports whether no attempt of a failed call can have been
// acted on: each was refused before any handler ran (a connection
// refused, a request that never left whole, a load shedder's overload
// answer, a 429, a Warren server's 408 body_timeout). Such a call may be sent again, whatever its method.
// False when some attempt may have reached a handler (a connection reset
// or cut mid-call, an attempt's timeout, a handler's error) or when err
// is nil.
func Unprocessed(err error) bool {
	if err == nil {
		return false
	}
	attempts := []error{err}
	var re *retry.Error
	if errors.As(err, &re) {
		attempts = re.Attempts
	}
	for _, a := range attempts {
		if classify(a) != retry.Unprocessed {
			return false
		}
	}
	return len(attempts) > 0
}

// Client calls one service.
type Client struct {
	service  string
	src      sd.Instancer
	ownsSrc  bool
	ep       *endpointer.Endpointer
	bal      balancer.Balancer
	detector *outlier.Detector
	policy   *retry.Policy
	// newPolicy makes a named method's own policy (methodPolicy); nil
	// with WithRetryPolicy, whose policy serves every call as is.
	newPolicy func() (*retry.Policy, error)
	policies  sync.Map // API method name → *retry.Policy
	npolicies atomic.Int32
	maxBody   int64
	obs       Observer
	limiter   *climit.Limiter
	answers   answers      // per-instance successes, for the limit's outcomes (answers.go)
	tracer    trace.Tracer // nil: no per-method spans
	logger    log.Logger   // nil: none
	spill     *spill       // nil: the instancer cannot spill (spill.go)

	closeOnce sync.Once
	closed    atomic.Bool
}

type config struct {
	bal          balancer.Balancer
	policy       *retry.Policy
	retryOpts    []retry.Option
	outlierOpts  []outlier.Option
	noOutlier    bool
	newTransport func() *http.Transport
	wrapRT       func(http.RoundTripper) http.RoundTripper
	tls          *tls.Config
	plaintextOK  bool // WithPlaintextPeers: with tls set, http endpoints still called
	obs          Observer
	logger       log.Logger
	snapshotDir  string
	maxBody      int64
	limitOpts    []climit.Option
	noLimit      bool
	tracer       trace.Tracer
	tp           trace.TracerProvider          // WithTracerProvider's, for TracingOf
	prop         propagation.TextMapPropagator // WithPropagator

	instanceFactory InstanceFactory

	spill *spill // New's: hears which instancer discovery makes
}

// Option configures a Client. An option given a bad value makes New (and
// NewFromInstancer) fail with an error that names it.
type Option func(*config) error

// WithBalancer sets the balancer (default balancer.NewP2C(): least loaded
// of two random instances, which routes around slow instances on its own).
// A balancer serves one client; do not share it.
func WithBalancer(b balancer.Balancer) Option {
	return func(c *config) error {
		if b == nil {
			return errors.New("client.WithBalancer(nil)")
		}
		c.bal = b
		return nil
	}
}

// WithRetry adds retry options to the defaults (3 attempts, 10ms–500ms
// backoff, budget 20% + 10, the adaptive per-attempt deadline and hedging
// of idempotent and keyed calls; see package retry).
func WithRetry(opts ...retry.Option) Option {
	return func(c *config) error { c.retryOpts = append(c.retryOpts, opts...); return nil }
}

// WithRetryPolicy uses p as is, for sharing one budget between clients.
func WithRetryPolicy(p *retry.Policy) Option {
	return func(c *config) error {
		if p == nil {
			return errors.New("client.WithRetryPolicy(nil)")
		}
		c.policy = p
		return nil
	}
}

// WithOutlier adds outlier ejection options to the defaults (5 consecutive
// failures, 10s cooldown doubling to 5m, at most 50% ejected).
func WithOutlier(opts ...outlier.Option) Option {
	return func(c *config) error { c.outlierOpts = append(c.outlierOpts, opts...); return nil }
}

// WithoutOutlier disables outlier ejection.
func WithoutOutlier() Option { return func(c *config) error { c.noOutlier = true; return nil } }

// WithConcurrencyLimit adds options to the client's adaptive limit on
// calls in flight to the service (package climit; default: start 500,
// floor 20, ceiling 5000, cut by 10% at most every 100ms while calls fail
// as overloaded or time out). Calls over the limit fail at once with
// climit.ErrLimited.
func WithConcurrencyLimit(opts ...climit.Option) Option {
	return func(c *config) error { c.limitOpts = append(c.limitOpts, opts...); return nil }
}

// WithoutConcurrencyLimit turns the adaptive limit off.
func WithoutConcurrencyLimit() Option { return func(c *config) error { c.noLimit = true; return nil } }

// WithTransport sets how each instance's transport is made (default:
// DefaultTransport). It is called once per instance.
func WithTransport(f func() *http.Transport) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("client.WithTransport(nil)")
		}
		c.newTransport = f
		return nil
	}
}

// WithRoundTripper wraps each instance's transport, for tracing or
// auth headers: wrap gets the transport WithTransport made and returns what
// the client sends through. Several wrappers apply in order, the last one
// outermost.
func WithRoundTripper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *config) error {
		if wrap == nil {
			return errors.New("client.WithRoundTripper(nil)")
		}
		if prev := c.wrapRT; prev != nil {
			c.wrapRT = func(rt http.RoundTripper) http.RoundTripper { return wrap(prev(rt)) }
			return nil
		}
		c.wrapRT = wrap
		return nil
	}
}

// WithTLS sets the TLS configuration of every instance's transport (unless
// the transport WithTransport makes has its own): the CA that verifies the
// services and, for mTLS, the client certificate. A client with TLS calls
// only instances that publish an https endpoint (grpcs for grpcclient):
// one that publishes plain http is skipped with ErrPlaintextPeer, so a
// mis-deployed instance, or a record written by anyone who can write to
// the registry, cannot downgrade the mesh to cleartext. WithPlaintextPeers
// allows them (a migration to TLS); see docs/security.md.
func WithTLS(cfg *tls.Config) Option { return func(c *config) error { c.tls = cfg; return nil } }

// WithPlaintextPeers lets a client with WithTLS also call instances that
// publish only a plaintext endpoint (http, grpc), as it does without TLS:
// for a mesh moving to TLS one instance at a time.
func WithPlaintextPeers() Option { return func(c *config) error { c.plaintextOK = true; return nil } }

// ErrPlaintextPeer is why a client with WithTLS skips an instance that
// publishes no TLS endpoint (the endpointer logs it with the instance).
// It matches registry.ErrInvalidInstance too: such an instance is not one
// for this client for good, and the endpointer does not build it again
// (it does an instance whose build failed otherwise).
var ErrPlaintextPeer error = plaintextPeer{}

type plaintextPeer struct{}

func (plaintextPeer) Error() string {
	return "instance publishes no TLS endpoint and this client speaks TLS only (client.WithPlaintextPeers allows it)"
}

func (plaintextPeer) Is(target error) bool { return target == registry.ErrInvalidInstance }

// WithObserver reports picks, retries, budget refusals and breaker
// changes to o (package metrics has a Prometheus one). Default: none.
func WithObserver(o Observer) Option {
	return func(c *config) error {
		if o == nil {
			return errors.New("client.WithObserver(nil)")
		}
		c.obs = o
		return nil
	}
}

// WithLogger sets where discovery and snapshot trouble is logged (default
// nowhere).
func WithLogger(l log.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("client.WithLogger(nil)")
		}
		c.logger = l
		return nil
	}
}

// WithSnapshot keeps the last good instance set in dir/<service>.json and
// serves it when the registry cannot be reached at start (see package
// snapshot). Only New takes it; NewFromInstancer, which takes the
// instancer as is, refuses it.
func WithSnapshot(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New(`client.WithSnapshot(""): no directory`)
		}
		c.snapshotDir = dir
		return nil
	}
}

// WithMaxResponseBytes bounds a response body (default 16 MiB).
func WithMaxResponseBytes(n int64) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("client.WithMaxResponseBytes(%d): must be positive", n)
		}
		c.maxBody = n
		return nil
	}
}

// DefaultTransport returns the per-instance transport used unless
// WithTransport says otherwise: no proxy (calls stay inside the mesh), 2s
// dial timeout (a dial failure is safe to retry for any method), on
// Linux a connection closed once a request has gone unacknowledged for
// DefaultUnackedTimeout (TCP_USER_TIMEOUT), enough idle connections per
// instance that a busy client does not re-dial, and an idle timeout
// (DefaultIdleConnTimeout) shorter than the server's.
func DefaultTransport() *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second,
			Control: tcpopt.UserTimeout(DefaultUnackedTimeout)}).DialContext,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     DefaultIdleConnTimeout,
	}
}

// DefaultDialTimeout bounds DefaultTransport's dial to one instance: a
// dial that fails is safe to retry on another for any method, so an
// instance that does not answer SYNs costs a call 2 s, not the kernel's
// minutes.
const DefaultDialTimeout = 2 * time.Second

// DefaultUnackedTimeout is how long a request may go unacknowledged by
// the instance's TCP stack before the connection is closed (Linux:
// TCP_USER_TIMEOUT): a host that died or a route that drops packets sends
// no reset, and a call that cannot be retried — no per-attempt deadline —
// would otherwise wait ~15 min for the kernel. 20 s, gRPC's keepalive
// timeout: a lossy link retransmits for seconds, not that long; an
// instance that is merely slow acknowledges the request and is not cut.
const DefaultUnackedTimeout = 20 * time.Second

// DefaultIdleConnTimeout is how long the client keeps an idle connection:
// well under a Warren server's idle timeout (90 s), so the client closes an
// idle connection before the server does. Were they equal, a request sent
// on a connection the server was closing at that moment would fail with
// EOF, and a POST that is not keyed could not be retried.
const DefaultIdleConnTimeout = 45 * time.Second

// New returns a client of service, found through d.
func New(ctx context.Context, d registry.Discovery, service string, opts ...Option) (*Client, error) {
	switch {
	case d == nil:
		return nil, fmt.Errorf("client %s: nil discovery", service)
	case service == "":
		return nil, errors.New("client: empty service name")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", service, err)
	}
	// The instancer d makes, which may spill (a registry.Failover), is
	// heard here: the snapshot wrapper hides it, and may make it later.
	cfg.spill = newSpill(service, cfg.logger)
	d = spillCapture{d: d, spill: cfg.spill}
	if cfg.snapshotDir != "" {
		sopts := []snapshot.Option{snapshot.WithLogger(cfg.logger)}
		if so, ok := cfg.obs.(StaleObserver); ok {
			sopts = append(sopts, snapshot.WithStaleObserver(so.DiscoveryStale))
		}
		d = snapshot.Discovery(d, cfg.snapshotDir, sopts...)
	}
	src, err := d.Instancer(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", service, err)
	}
	c, err := build(src, service, cfg)
	if err != nil {
		src.Stop()
		return nil, fmt.Errorf("client %s: %w", service, err)
	}
	c.ownsSrc = true
	return c, nil
}

// NewFromInstancer returns a client of service over any go-kit instancer
// (sd.FixedInstancer for a static list). The caller keeps ownership of src.
func NewFromInstancer(src sd.Instancer, service string, opts ...Option) (*Client, error) {
	switch {
	case src == nil:
		return nil, fmt.Errorf("client %s: nil instancer", service)
	case service == "":
		return nil, errors.New("client: empty service name")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", service, err)
	}
	if cfg.snapshotDir != "" { // refused, not ignored: the caller counts on it
		return nil, fmt.Errorf("client %s: client.WithSnapshot applies to New, which opens discovery; "+
			"wrap the discovery with snapshot.Discovery before making src", service)
	}
	c, err := build(src, service, cfg)
	if err != nil {
		return nil, fmt.Errorf("client %s: %w", service, err)
	}
	return c, nil
}

func newConfig(opts []Option) (config, error) {
	cfg := config{newTransport: DefaultTransport, logger: log.NewNopLogger(), maxBody: 16 << 20, obs: NopObserver{}}
	for _, o := range opts {
		if o == nil {
			return cfg, errors.New("nil option")
		}
		if err := o(&cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// build validates the retry, outlier and limit options before it starts
// anything, so a bad value leaves nothing running.
func build(src sd.Instancer, service string, cfg config) (*Client, error) {
	c := &Client{service: service, src: src, bal: cfg.bal, policy: cfg.policy, maxBody: cfg.maxBody, obs: cfg.obs,
		tracer: cfg.tracer, logger: cfg.logger}
	if c.policy == nil {
		ropts := []retry.Option{retry.WithClassifier(classify)}
		if _, ok := cfg.bal.(*balancer.ConsistentHash); ok {
			// A key should land on its one instance (its cache): a hedge
			// would send it to another. WithRetry(retry.WithHedging(d))
			// turns hedging back on.
			ropts = append(ropts, retry.WithoutHedging())
		}
		ropts = append(ropts, cfg.retryOpts...)
		p, err := retry.New(ropts...)
		if err != nil {
			return nil, err
		}
		c.policy = p
		// Each named method's policy learns its own deadline and hedge
		// delay and spends the one budget (methodPolicy).
		ropts = append(slices.Clip(ropts), retry.WithBudget(p.Budget()))
		c.newPolicy = func() (*retry.Policy, error) { return retry.New(ropts...) }
	}
	if !cfg.noOutlier {
		oopts := append([]outlier.Option{outlier.WithObserver(newBreakerObserver(service, cfg.obs, cfg.logger))}, cfg.outlierOpts...)
		d, err := outlier.New(oopts...)
		if err != nil {
			return nil, err
		}
		c.detector = d
	}
	if c.bal == nil {
		c.bal = balancer.NewP2C()
	}
	if !cfg.noLimit {
		l, err := climit.New(cfg.limitOpts...)
		if err != nil {
			return nil, err
		}
		c.limiter = l
	}
	epOpts := []endpointer.Option{
		endpointer.WithBalancer(c.bal),
		endpointer.WithFailure(instanceFailure),
		endpointer.WithLogger(log.With(cfg.logger, "service", service)),
	}
	if c.detector != nil {
		epOpts = append(epOpts, endpointer.WithDetector(c.detector))
	}
	f := factory(cfg, service, c.maxBody)
	if cfg.instanceFactory != nil {
		f = instanceFactory(cfg, service, cfg.instanceFactory)
	}
	epOpts = append(epOpts, endpointer.WithInstanceFactory(f))
	c.ep = endpointer.New(src, nil, epOpts...)
	c.spill = cfg.spill
	if c.spill == nil {
		if _, ok := src.(spillable); ok {
			c.spill = newSpill(service, cfg.logger)
			c.spill.use(src)
		}
	}
	if c.spill != nil {
		c.spill.targets = c.ep.Targets
		if d := c.detector; d != nil {
			c.spill.ejected = func() int { n, _ := d.Ejected(); return n }
		}
	}
	if so, ok := cfg.obs.(ServiceObserver); ok {
		so.ClientStarted(service)
	}
	c.tellLimit(cfg.obs)
	return c, nil
}

// maxMethodPolicies bounds the methods that get a policy of their own: a
// generated client has a few dozen; names made per call (a bug) share the
// client's policy past it instead of growing the map without end.
const maxMethodPolicies = 256

// methodPolicy returns the retry policy of a call of the API method named
// method (Method, DoMethod): one per method, sharing the client's retry
// budget. The adaptive per-attempt deadline and the hedge delay are learnt
// from the attempts a policy sees; learnt over every method together, a
// method slow by design (a report taking 600 ms beside lookups taking
// 2 ms) had its attempts cut off at the fast method's deadline, hedged at
// its p99 and sent again: each call did its work three times and struck
// healthy instances with timeouts (TestClient_SlowMethodIsNotCutOffByAFastMethodsDeadline).
// Unnamed calls, and every call of a client given WithRetryPolicy, use
// the client's policy.
func (c *Client) methodPolicy(method string) *retry.Policy {
	if method == "" || c.newPolicy == nil {
		return c.policy
	}
	if p, ok := c.policies.Load(method); ok {
		return p.(*retry.Policy)
	}
	if c.npolicies.Load() >= maxMethodPolicies {
		return c.policy
	}
	p, err := c.newPolicy()
	if err != nil {
		return c.policy // not reached: the same options made c.policy
	}
	v, loaded := c.policies.LoadOrStore(method, p)
	if !loaded {
		c.npolicies.Add(1)
	}
	return v.(*retry.Policy)
}

// classify adds the client's own errors to retry.Classify.
func classify(err error) retry.Class {
	switch {
	case errors.Is(err, balancer.ErrNoEndpoints):
		return retry.Unprocessed // discovery may fill the set before the next attempt
	case serverClosedIdle(err):
		return retry.Unprocessed
	}
	return retry.Classify(err)
}

// errServerClosedIdleText is net/http's unexported errServerClosedIdle. The
// transport reports it when the server closed the connection while no
// request was outstanding on it, so the request never reached a handler.
// net/http retries it by itself only for a GET on a reused connection; a
// fresh connection the server closed as it stopped (accepted from the
// backlog by the kernel, closed with the listener) reached the caller as a
// client error — seen in a loaded make test when an instance was killed.
const errServerClosedIdleText = "http: server closed idle connection"

func serverClosedIdle(err error) bool {
	if err == nil {
		return false
	}
	if err.Error() == errServerClosedIdleText {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return serverClosedIdle(u.Unwrap())
	case interface{ Unwrap() []error }:
		return slices.ContainsFunc(u.Unwrap(), serverClosedIdle)
	}
	return false
}

// instanceFailure says which errors count against an instance's health:
// transport failures, timeouts and 5xx answers, not the caller cancelling,
// 4xx answers, overload answers (the instance is full, not broken),
// "idempotency key in progress" answers (another attempt holds the key),
// 501s (this method is not implemented; the instance's others are) or
// bodies the client could not decode.
func instanceFailure(err error) bool {
	var se *Error
	var de *decodeErr
	var tf InstanceFailure
	switch {
	case errors.As(err, &tf):
		return tf.InstanceFailure()
	case errors.As(err, &se):
		return se.Status >= 500 && se.Status != http.StatusNotImplemented && !se.Overloaded() && !se.inProgress()
	case errors.As(err, &de), errors.Is(err, context.Canceled), errors.Is(err, ErrResponseTooLarge):
		return false
	}
	return true
}

// factory makes one instance's endpoint. Its transport is created on the
// instance's first call, not when discovery delivers it: a client of a
// service with 10k instances that talks to a few holds a few transports.
// Its closer drops the instance's idle connections and reports the release
// once the endpointer has retired it and its last call has returned.
func factory(cfg config, service string, maxBody int64) endpointer.InstanceFactory {
	shared := &instanceShared{cfg: &cfg, obs: cfg.obs, service: service, maxBody: maxBody, live: newLiveIDs()}
	shared.inst, _ = cfg.obs.(InstanceObserver)
	return func(inst registry.Instance) (endpoint.Endpoint, io.Closer, error) {
		// The endpoint of the transport this client speaks; an instance
		// serving only others (gRPC) is not a target for it.
		base, ok := inst.Endpoint("http", "https")
		if !ok {
			return nil, nil, fmt.Errorf("%w: %s serves no HTTP endpoint (has %v)", registry.ErrInvalidInstance, inst.ID, inst.Endpoints)
		}
		if cfg.tls != nil && !cfg.plaintextOK {
			if base, ok = inst.Endpoint("https"); !ok {
				return nil, nil, fmt.Errorf("%s (has %v): %w", inst.ID, inst.Endpoints, ErrPlaintextPeer)
			}
		}
		// Only strings are kept, not inst: its metadata map alone would
		// cost hundreds of bytes per instance.
		h := &instanceHTTP{
			instanceShared: shared,
			base:           base,
			addr:           strings.TrimPrefix(strings.TrimPrefix(base, "http://"), "https://"),
			id:             inst.ID,
		}
		acquired(shared.inst, service, inst.ID, shared.live.add(inst.ID))
		return h.call, h, nil
	}
}

// client returns the instance's HTTP client, making it on first use.
func (h *instanceHTTP) client() *http.Client {
	if hc := h.hc.Load(); hc != nil {
		return hc
	}
	h.once.Do(func() {
		tr := h.cfg.newTransport()
		if h.cfg.tls != nil && tr.TLSClientConfig == nil {
			tr.TLSClientConfig = h.cfg.tls.Clone()
		}
		var rt http.RoundTripper = tr
		if h.cfg.wrapRT != nil {
			rt = h.cfg.wrapRT(tr)
		}
		h.tr.Store(tr)
		h.hc.Store(&http.Client{
			Transport: rt,
			// A service answer is the answer; following a redirect to
			// somewhere outside discovery is not a client's call.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		})
	})
	return h.hc.Load()
}

// liveIDs counts each instance ID's targets not yet closed. A record
// changed in place (the same ID and address, a new version or weight) is
// a new target while calls may still be out on the old one; the old
// one's close, after them, must not report the instance released while
// the new one serves it: package metrics drops the instance's series on
// that word (TestClient_RecordChangedInPlaceIsNotReleasedWhileListed).
// The first target of an ID is the instance's acquisition
// (InstanceObserver), the last one's close its release.
type liveIDs struct {
	mu sync.Mutex
	n  map[string]int
}

func newLiveIDs() *liveIDs { return &liveIDs{n: map[string]int{}} }

// add counts one more target of id and reports whether it is the only
// one: the instance has just entered the client's set.
func (l *liveIDs) add(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n[id]++
	return l.n[id] == 1
}

// acquired tells obs, if it is an InstanceObserver, that id entered the
// client's set; first is liveIDs.add's answer. Called as a target is made,
// never per call.
func acquired(obs InstanceObserver, service, id string, first bool) {
	if first && obs != nil {
		obs.InstanceAcquired(service, id)
	}
}

// done counts one of id's targets closed and reports whether it was the
// last.
func (l *liveIDs) done(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[id]--; l.n[id] > 0 {
		return false
	}
	delete(l.n, id)
	return true
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// Close stops discovery and closes every instance's connections once its
// calls in flight have returned. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.spill != nil {
			c.spill.close()
		}
		c.ep.Close()
		if c.ownsSrc {
			c.src.Stop()
		}
	})
	return nil
}

// State is a client's view of its service, for /readyz and debugging.
type State struct {
	Service   string `json:"service"`
	Instances int    `json:"instances"`
	Ejected   int    `json:"ejected"`
	// Retries and RetriesRefused count the budget's decisions.
	Retries        int64 `json:"retries"`
	RetriesRefused int64 `json:"retries_refused"`
	// Hedges counts the hedged attempts sent (retry.WithHedging); each is
	// also one of Retries. HedgesRefused counts the hedges due but not
	// sent: the budget was down to its hedge reserve, or recent hedges
	// were needless (retry.Policy.HedgesRefused).
	Hedges        int64 `json:"hedges"`
	HedgesRefused int64 `json:"hedges_refused"`
	// Limit and Limited are the adaptive concurrency limit and how many
	// calls it refused (zero without a limit).
	Limit   int64  `json:"limit,omitempty"`
	Limited uint64 `json:"limited,omitempty"`
	// Snapshot is set when the instances come through a snapshot wrapper.
	Snapshot *snapshot.State `json:"snapshot,omitempty"`
	// Spilling is set while this client has its registry.Failover add the
	// next region's instances, every local one being ejected or failing
	// (see docs/production.md, "Several datacenters or regions").
	Spilling bool `json:"spilling,omitempty"`
}

// State returns the client's current view.
func (c *Client) State() State {
	s := State{Service: c.service, Instances: len(c.ep.Targets())}
	if c.detector != nil {
		s.Ejected, _ = c.detector.Ejected()
	}
	if b := c.policy.Budget(); b != nil {
		s.Retries, s.RetriesRefused = b.Stats()
	}
	s.Hedges, s.HedgesRefused = c.policy.Hedges(), c.policy.HedgesRefused()
	c.policies.Range(func(_, v any) bool {
		p := v.(*retry.Policy)
		s.Hedges += p.Hedges()
		s.HedgesRefused += p.HedgesRefused()
		return true
	})
	if c.limiter != nil {
		ls := c.limiter.Stats()
		s.Limit, s.Limited = ls.Limit, ls.Limited
	}
	s.Spilling = c.spill != nil && c.spill.on.Load()
	if si, ok := c.src.(interface{ State() snapshot.State }); ok {
		st := si.State()
		s.Snapshot = &st
	}
	return s
}

// Targets returns the current instances with their load and health, for
// debugging and tests. Do not modify the slice.
func (c *Client) Targets() []*balancer.Target { return c.ep.Targets() }
