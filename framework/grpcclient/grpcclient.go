// Package grpcclient calls Warren services over gRPC with the same
// machinery as the HTTP client (package client): discovery, the balancer
// (P2C by default), retries with a budget and gRPC codes classified,
// outlier ejection, the adaptive concurrency limit and the on-disk
// snapshot. Each instance gets its own grpc.ClientConn to the endpoint it
// publishes as grpc:// or grpcs:// (closed once the instance has left
// discovery and its last call has returned); Warren's balancer, not
// grpc-go's, picks the instance of every attempt.
//
//	users, err := grpcclient.New(ctx, reg, "user", grpcclient.WithClientOptions(d.ClientOptions()...))
//	get := grpcclient.NewEndpoint(users, "/user.v1.User/Get", encodeGet, decodeUser, &userpb.User{}, grpcclient.Idempotent())
//
// Generated clients (svcgen's MakeGRPCClientEndpoints) build their
// per-method endpoints this way. A method given go-kit client options
// (ClientOptions) is called through a go-kit grpctransport.Client made
// once per instance; one without is invoked directly, the same call minus
// that client's per-call overhead. See docs/grpc.md.
package grpcclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	kitgrpc "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/tcpopt"
)

// Client calls one service over gRPC. It is safe for concurrent use;
// Close it when done.
type Client struct {
	*client.Client
	service string
}

type config struct {
	dialer      func(context.Context, string) (net.Conn, error) // WithContextDialer; nil: dial
	dialOpts    []grpc.DialOption
	tls         *tls.Config
	plaintextOK bool // client.WithPlaintextPeers among clientOpts
	clientOpts  []client.Option
}

// Option configures New.
type Option func(*config) error

// WithClientOptions passes options to the underlying client.Client
// (balancer, retry, outlier, snapshot, logger, observer; WithTLS there is
// used here too, and WithPropagator traces each attempt with
// WithTracerProvider's provider). bootstrap's Deps.ClientOptions() fit as
// they are.
func WithClientOptions(opts ...client.Option) Option {
	return func(c *config) error { c.clientOpts = append(c.clientOpts, opts...); return nil }
}

// WithDialOptions adds grpc.DialOptions to every instance's connection
// (stats handlers for tracing, message size limits, keepalive).
// Transport credentials come from the endpoint's scheme and WithTLS. A
// grpc.WithContextDialer here replaces grpcclient's dialer, losing its
// record of refused dials and its TCP_USER_TIMEOUT: use WithContextDialer.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) error {
		for _, o := range opts {
			if o == nil {
				return errors.New("grpcclient.WithDialOptions: nil option")
			}
		}
		c.dialOpts = append(c.dialOpts, opts...)
		return nil
	}
}

// WithTLS sets the TLS configuration of connections to grpcs:// endpoints
// (the CA that verifies the services and, for mTLS, the client
// certificate). Default: client.WithTLS's, else the system roots. With
// TLS set (here or by client.WithTLS) an instance that publishes only a
// grpc:// endpoint is skipped with client.ErrPlaintextPeer, unless
// client.WithPlaintextPeers is among the client options.
func WithTLS(cfg *tls.Config) Option {
	return func(c *config) error {
		if cfg == nil {
			return errors.New("grpcclient.WithTLS(nil)")
		}
		c.tls = cfg
		return nil
	}
}

// New returns a gRPC client of service, found through d.
func New(ctx context.Context, d registry.Discovery, service string, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", service, err)
	}
	c, err := client.New(ctx, d, service, append(cfg.clientOpts, client.WithInstanceFactory(cfg.factory))...)
	if err != nil {
		return nil, err
	}
	return &Client{Client: c, service: service}, nil
}

func newConfig(opts []Option) (config, error) {
	var cfg config
	for _, o := range opts {
		if o == nil {
			return cfg, errors.New("nil option")
		}
		if err := o(&cfg); err != nil {
			return cfg, err
		}
	}
	if cfg.tls == nil {
		cfg.tls = client.TLSOf(cfg.clientOpts...)
	}
	cfg.plaintextOK = client.PlaintextPeersOf(cfg.clientOpts...)
	if tp, prop := client.TracingOf(cfg.clientOpts...); prop != nil {
		cfg.dialOpts = append(cfg.dialOpts, attemptTracing(tp, prop))
	}
	return cfg, nil
}

// NewFromInstancer returns a gRPC client of service over any go-kit
// instancer (sd.FixedInstancer of instance strings for a static list). The
// caller keeps ownership of src.
func NewFromInstancer(src sd.Instancer, service string, opts ...Option) (*Client, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("grpc client %s: %w", service, err)
	}
	c, err := client.NewFromInstancer(src, service, append(cfg.clientOpts, client.WithInstanceFactory(cfg.factory))...)
	if err != nil {
		return nil, err
	}
	return &Client{Client: c, service: service}, nil
}

// factory dials one instance: its grpc or grpcs endpoint, one ClientConn.
func (cfg config) factory(inst registry.Instance) (endpoint.Endpoint, io.Closer, error) {
	ep, ok := inst.Endpoint("grpc", "grpcs")
	if !ok {
		return nil, nil, fmt.Errorf("%w: %s serves no gRPC endpoint (has %v)", registry.ErrInvalidInstance, inst.ID, inst.Endpoints)
	}
	scheme, addr, _ := cutScheme(ep)
	if cfg.tls != nil && !cfg.plaintextOK && scheme != "grpcs" {
		if ep, ok = inst.Endpoint("grpcs"); !ok {
			return nil, nil, fmt.Errorf("%s (has %v): %w", inst.ID, inst.Endpoints, client.ErrPlaintextPeer)
		}
		scheme, addr, _ = cutScheme(ep)
	}
	creds := insecure.NewCredentials()
	if scheme == "grpcs" {
		tc := cfg.tls
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		creds = credentials.NewTLS(tc.Clone())
	}
	// passthrough: the address is already resolved; no DNS, no resolver.
	// The dialer first: a grpc.WithContextDialer among the caller's dial
	// options replaces it (WithContextDialer keeps it).
	ic := &instanceConn{addr: addr, id: inst.ID}
	cc, err := grpc.NewClient("passthrough:///"+addr, append([]grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithContextDialer(ic.noting(cfg.instanceDialer())), grpc.WithConnectParams(reconnect)}, cfg.dialOpts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("grpc client for %s: %w", ep, err)
	}
	ic.cc = cc // NewClient dials nothing: no call can reach ic before this
	return ic.call, cc, nil
}

// reconnect is how an instance's connection redials after failing: at
// most a second apart. The connection lives as long as the instance is
// in discovery, and grpc-go keeps redialing it by itself with a backoff
// that grows to 120 s while the instance is unreachable; an instance
// that came back at the same address before leaving discovery (a crash
// restarted within its lease, a registry outage) then had every call
// fail fast on the stale TRANSIENT_FAILURE until the next dial, 8 s or
// more after six failed ones (TestClient_AnInstanceBackAtItsAddress
// IsCalledWithoutTheOutagesBackoff). Backing off the instance is the
// balancer's and outlier ejection's job, as over HTTP, which dials per
// attempt; the cost is one dial a second per client to an instance that
// is listed but down. WithDialOptions(grpc.WithConnectParams(...))
// replaces it.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 250 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: 20 * time.Second, // grpc-go's default; a zero here would be taken as none
}

// dial connects to an instance over TCP, with no proxy (calls stay in the
// mesh, as the HTTP client's) and TCP_USER_TIMEOUT = client.DefaultUnackedTimeout (Linux): a request an
// instance that vanished without a reset never acknowledges fails then,
// rather than after the kernel's ~15 min — grpc-go sets the option only
// with keepalive pings configured, which Warren does not turn on by
// default (report j53a F1, as for the HTTP client).
func dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Control: tcpopt.UserTimeout(client.DefaultUnackedTimeout)}
	return d.DialContext(ctx, "tcp", addr)
}

// noting wraps an instance's dialer to remember whether its last dial
// was refused (ECONNREFUSED: no process at the address). grpc-go reports
// a failed dial to the call as an UNAVAILABLE status whose text alone
// says "connection refused"; the dialer sees the syscall error itself, so
// the call's *Error can wrap it (Error.Unwrap) and the retry policy
// counts the attempt as HTTP's refused one: free of budget and, up to
// retry.MaxRefusedFree, of attempts.
func (ic *instanceConn) noting(d func(context.Context, string) (net.Conn, error)) func(context.Context, string) (net.Conn, error) {
	return func(ctx context.Context, addr string) (net.Conn, error) {
		conn, err := d(ctx, addr)
		if errors.Is(err, syscall.ECONNREFUSED) {
			ic.refused.Store(&err)
		} else {
			ic.refused.Store(nil)
		}
		return conn, err
	}
}

func cutScheme(ep string) (scheme, addr string, ok bool) {
	for _, s := range []string{"grpc", "grpcs"} {
		if a, found := strings.CutPrefix(ep, s+"://"); found {
			return s, a, true
		}
	}
	return "", ep, false
}

// instanceConn is one instance's connection and the go-kit client of each
// method with ClientOptions called on it so far.
type instanceConn struct {
	cc      *grpc.ClientConn
	addr    string
	id      string                // the instance's registry ID, for errors
	methods sync.Map              // *Method → endpoint.Endpoint
	refused atomic.Pointer[error] // the last dial's error if it was ECONNREFUSED (see noting)
}

// call is what an endpoint made by NewEndpoint passes through Client.Do.
type call struct {
	m   *Method
	req any
}

func (ic *instanceConn) call(ctx context.Context, x any) (any, error) {
	c, ok := x.(*call)
	if !ok {
		return nil, fmt.Errorf("grpc client: request is %T; gRPC clients are called through their endpoints (NewEndpoint)", x)
	}
	var resp any
	var err error
	if len(c.m.kitOpts) == 0 {
		resp, err = c.m.invoke(ctx, ic.cc, c.req)
	} else {
		ep, ok := ic.methods.Load(c.m)
		if !ok {
			ep, _ = ic.methods.LoadOrStore(c.m, c.m.kitClient(ic.cc).Endpoint())
		}
		resp, err = ep.(endpoint.Endpoint)(ctx, c.req)
	}
	if err == nil {
		return resp, nil
	}
	// The method's own encoder or decoder failed: checked before the
	// status, which their error may carry too (an encoder returning
	// status.Error) without any instance having sent it.
	var ue *localErr
	var de *undecodableErr
	switch {
	case errors.As(err, &ue):
		return nil, ue
	case errors.As(err, &de):
		de.instance = ic.addr
		return nil, de
	}
	st, isStatus := status.FromError(err)
	if !isStatus {
		// grpc-go fails its calls with a status, and encode and decode
		// mark theirs: anything else came from this process, no
		// instance's doing (not reached today).
		return nil, &localErr{svcerr.Wrap(svcerr.Internal, "", "grpc client: "+c.m.full+" failed", err)}
	}
	if uerr := c.m.unencodable(ctx, c.req, st); uerr != nil {
		return nil, uerr
	}
	e := &Error{
		Status:   st,
		Instance: ic.addr,
		ID:       ic.id,
		// From the status alone, not from the connection's state when
		// the call began: a call that began in TRANSIENT_FAILURE may be
		// sent once the connection is back, and then lost mid-call (a
		// non-idempotent call ran on two instances, audit c4 C2). A call
		// failed fast in TRANSIENT_FAILURE carries the connection's error,
		// which notSentMessage recognises.
		NotSent: notSentMessage(st.Message()),
	}
	if st.Code() == codes.Unavailable && notSentMessage(st.Message()) {
		if p := ic.refused.Load(); p != nil {
			e.dialErr = *p
		}
	}
	return nil, e
}

// propagateRequestID sends the caller's request ID as metadata.
func propagateRequestID(ctx context.Context, md *metadata.MD) context.Context {
	if id, ok := requestid.FromContext(ctx); ok {
		md.Set(grpctransport.RequestIDKey, id)
	}
	return ctx
}

var _ kitgrpc.ClientRequestFunc = propagateRequestID
