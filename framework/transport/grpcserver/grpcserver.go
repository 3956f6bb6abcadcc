// Package grpcserver is the gRPC transport.Server: a grpc.Server the
// service registers its gRPC services on, served next to grpc.health.v1,
// whose answers come from the App's liveness and readiness (so a
// withdrawing instance reports NOT_SERVING), behind Warren's interceptors
// (load shedding, request IDs, panic recovery, svcerr kinds as status
// codes; package grpctransport), traced with WithTracing (a server span
// per call), over plain TCP or TLS (WithTLS, published as grpcs). The App
// runs it through the same phases as HTTP: the self-check is a health
// Check that must echo the process's nonce, and the drain is GracefulStop
// bounded by the drain timeout, then Stop.
//
//	s, err := grpcserver.New(func(g *grpc.Server) { userpb.RegisterUserServer(g, user.NewGRPCServer(eps)) },
//		grpcserver.WithAddr(":9090"))
//	... app.New(name, handler, reg, app.WithServer(s))
//
// See docs/grpc.md.
package grpcserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/transport"
)

// DefaultAddr is the listen address unless WithAddr says otherwise.
const DefaultAddr = ":9090"

// Server serves gRPC; see the package doc.
type Server struct {
	register func(*grpc.Server)
	o        options

	mu       sync.Mutex
	ln       net.Listener
	srv      *grpc.Server
	nonce    string
	closed   bool
	stop     chan struct{} // closed when shutting down: ends health watches
	stopOnce sync.Once
	inFlight atomic.Int64
	streams  atomic.Int64 // the service's streams being handled (countStreams)
}

var _ transport.Server = (*Server)(nil)

// New returns a server on which register registers the service's gRPC
// services (called once, in Listen).
func New(register func(*grpc.Server), opts ...Option) (*Server, error) {
	if register == nil {
		return nil, errors.New("grpcserver: nil register function")
	}
	o := options{addr: DefaultAddr, watchEvery: time.Second}
	for _, opt := range opts {
		if opt == nil {
			return nil, errors.New("grpcserver: nil option")
		}
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("grpcserver: %w", err)
		}
	}
	if !o.noShed && o.shedder == nil {
		l, err := shed.New()
		if err != nil {
			return nil, fmt.Errorf("grpcserver: %w", err)
		}
		o.shedder = l
	}
	return &Server{register: register, o: o, stop: make(chan struct{})}, nil
}

// Scheme is "grpcs" with WithTLS, else "grpc".
func (s *Server) Scheme() string {
	if s.o.tls != nil {
		return "grpcs"
	}
	return "grpc"
}

// MaxHeaderListBytes bounds a call's metadata, as httpserver bounds
// headers (64 KiB): a call with more is refused before any handler runs.
const MaxHeaderListBytes = 64 << 10

// KeepaliveMinTime is the shortest interval between a client's keepalive
// pings the server accepts, with or without calls in flight. A client
// pinging more often is sent GOAWAY (grpc-go's enforcement).
// WithServerOptions(grpc.KeepaliveEnforcementPolicy(...)) replaces it.
const KeepaliveMinTime = 5 * time.Second

// Listen binds the address and builds the grpc.Server: health, then the
// service's own registrations.
func (s *Server) Listen(h transport.Host) (net.Addr, error) {
	var chain []grpc.UnaryServerInterceptor
	if s.o.shedder != nil {
		// Outermost, so a refusal costs nothing else.
		in, err := shed.UnaryServerInterceptor(s.o.shedder, s.o.shedOpts...)
		if err != nil {
			return nil, fmt.Errorf("grpc: %w", err)
		}
		chain = append(chain, in)
	}
	chain = append(chain, s.countInFlight, grpctransport.UnaryServerInterceptor(h.Logger, grpctransport.WithAccessLog(h.AccessLog)))
	chain = append(chain, s.o.interceptors...)
	// Metadata as the HTTP server takes headers: 64 KiB, not grpc-go's
	// 16 MiB (a dozen unauthenticated calls grew a service by 600 MB,
	// report j49b). WithServerOptions may raise it.
	//
	// Keepalive pings every 5 s or more are welcome, on idle connections
	// too: grpc-go's default policy (5 min) answers a client that pings
	// more often with GOAWAY "too_many_pings", which killed a 60 s call
	// in flight at 40 s for a client that keeps connections alive as
	// docs/grpc.md advises (grpc-go clients ping at most every 10 s;
	// report j50c).
	//
	// A call of a method no registered service has (a caller of a newer
	// release, during a rolling deploy) gets an access line like any call
	// and an UNIMPLEMENTED whose ErrorInfo tells callers it ran nothing:
	// they retry it on another instance and hold it against none (report
	// j50b). grpc-go's own answer left no trace on the server and read
	// like a handler's UNIMPLEMENTED. WithServerOptions(grpc.
	// UnknownServiceHandler(...)) replaces it.
	var served atomic.Pointer[map[string]grpc.ServiceInfo] // set below, once registered
	known := func(service string) bool {
		m := served.Load()
		if m == nil {
			return false
		}
		_, ok := (*m)[service]
		return ok
	}
	sopts := append([]grpc.ServerOption{
		grpc.MaxHeaderListSize(MaxHeaderListBytes),
		grpc.ChainUnaryInterceptor(chain...),
		grpc.ChainStreamInterceptor(s.countStreams),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.UnknownServiceHandler(grpctransport.UnknownServiceHandler(h.Logger, known, grpctransport.WithAccessLog(h.AccessLog))),
	}, s.o.serverOpts...)
	if s.o.tls != nil {
		sopts = append(sopts, grpc.Creds(handshakeCreds{TransportCredentials: credentials.NewTLS(s.o.tls), log: h.HandshakeLog()}))
	}
	ln, err := net.Listen("tcp", s.o.addr)
	if err != nil {
		if s.o.addrDefaulted {
			// Two instances on one host, each given only --listen, both
			// take the default port: say where the address came from.
			return nil, fmt.Errorf("grpc: listen on %s (the default: --listen's host, port %s; give each instance its own --grpc-listen, port 0 for a free one): %w",
				s.o.addr, DefaultPort, err)
		}
		return nil, fmt.Errorf("grpc: listen on %s: %w", s.o.addr, err)
	}
	srv := grpc.NewServer(sopts...)
	s.register(srv)
	// Health after the service's own: grpc-go ends the process (a FATAL
	// log, exit 1) when a second one is registered, so one the service
	// registered itself is refused here with a reason (report j50c).
	services := srv.GetServiceInfo()
	if _, ok := services[healthpb.Health_ServiceDesc.ServiceName]; ok {
		srv.Stop()
		ln.Close()
		return nil, fmt.Errorf("grpc: the service registered its own %s; Warren serves it from the App's health checks (readiness, liveness): remove that registration", healthpb.Health_ServiceDesc.ServiceName)
	}
	healthpb.RegisterHealthServer(srv, &healthServer{host: h, every: s.o.watchEvery, stop: s.stop, names: serviceNames(services)})
	if _, own := services["grpc.reflection.v1.ServerReflection"]; s.o.reflection && !own {
		reflection.Register(srv)
	}
	all := srv.GetServiceInfo()
	served.Store(&all)
	s.mu.Lock()
	s.ln, s.srv, s.nonce = ln, srv, h.Nonce
	s.mu.Unlock()
	return ln.Addr(), nil
}

// Serve answers until Shutdown or Close, then returns nil.
func (s *Server) Serve() error {
	s.mu.Lock()
	srv, ln, closed := s.srv, s.ln, s.closed
	s.mu.Unlock()
	if srv == nil {
		return errors.New("grpc: Serve before Listen")
	}
	if closed {
		return nil
	}
	// nil after Stop and GracefulStop; an error if it stopped on its own.
	if err := srv.Serve(ln); !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Probe calls grpc.health.v1 Check (LivenessService) at endpoint with the
// self-check key and checks that the answer is SERVING and its header
// carries this process's nonce.
func (s *Server) Probe(ctx context.Context, endpoint string) error {
	target, ok := strings.CutPrefix(endpoint, s.Scheme()+"://")
	if !ok {
		return fmt.Errorf("grpc: endpoint %q is not %s://", endpoint, s.Scheme())
	}
	creds := insecure.NewCredentials()
	if s.o.tls != nil {
		cfg := s.o.selfCheckTLS
		if cfg == nil {
			cfg = tlsconf.SelfCheck(s.o.tls)
		}
		creds = credentials.NewTLS(cfg)
	}
	cc, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("grpc: self-check %s: %w", endpoint, err)
	}
	defer cc.Close()
	var hdr metadata.MD
	ctx = metadata.AppendToOutgoingContext(ctx, SelfCheckKey, "1")
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: LivenessService},
		grpc.Header(&hdr))
	switch {
	case err != nil:
		return fmt.Errorf("grpc health Check at %s: %w", endpoint, err)
	case first(hdr.Get(SelfCheckKey)) != s.nonceValue():
		return fmt.Errorf("grpc health Check at %s was answered by another process", endpoint)
	case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		return fmt.Errorf("grpc health Check at %s answered %s", endpoint, resp.GetStatus())
	}
	return nil
}

func (s *Server) nonceValue() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nonce
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// Shutdown is GracefulStop bounded by ctx: the listener closes, health
// watches end with NOT_SERVING, in-flight calls finish; what is still
// running when ctx ends is cut by Stop and reported with ErrDrainTimeout.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	start := time.Now()
	done := make(chan struct{})
	go func() { srv.GracefulStop(); close(done) }() // ends when the calls do, or when Stop below cuts them
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		left, streams := s.inFlight.Load(), s.streams.Load()
		srv.Stop()
		<-done
		if left == 0 && streams == 0 {
			// Only idle connections were left, which GracefulStop holds
			// on for their GOAWAY round trip (up to a minute for a hung
			// client): closing them cuts nothing, as the HTTP server
			// closes its idle ones. Reporting an overrun of 0 calls made
			// a drain given no time look failed (audit c4 S1).
			return nil
		}
		what := fmt.Sprintf("%d gRPC call(s)", left)
		if streams > 0 {
			what += fmt.Sprintf(" and %d stream(s)", streams)
		}
		return fmt.Errorf("%w: %s still in flight after %s: %w",
			transport.ErrDrainTimeout, what, time.Since(start).Round(time.Millisecond), context.Cause(ctx))
	}
}

// Close stops at once. It is idempotent.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.srv != nil {
		s.srv.Stop() // closes the listener if Serve has taken it
	}
	if s.ln != nil {
		// Serve may not have started: close it here too, or connections
		// would queue on a listener nobody accepts from.
		if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}

// Shedder returns the server's load shedder, nil with WithoutShedding.
func (s *Server) Shedder() *shed.Limiter { return s.o.shedder }

// InFlight is the number of unary calls being handled now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

// TLS returns the server's TLS configuration (nil for plain gRPC).
func (s *Server) TLS() *tls.Config { return s.o.tls }

// countStreams counts the service's streaming calls, so a drain that
// cuts one says so. A health Watch is not counted: it ends by itself when
// the server starts shutting down.
func (s *Server) countStreams(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if info.FullMethod == healthWatch {
		return h(srv, ss)
	}
	s.streams.Add(1)
	defer s.streams.Add(-1)
	return h(srv, drainingStream{ss, transport.WithDraining(ss.Context(), s.stop)})
}

// drainingStream is a service's stream whose context says when the drain
// begins (transport.Draining), so a long-lived stream can end on its own
// terms instead of holding GracefulStop until the drain's timeout.
type drainingStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (d drainingStream) Context() context.Context { return d.ctx }

const healthWatch = "/grpc.health.v1.Health/Watch"

func (s *Server) countInFlight(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	return h(transport.WithDraining(ctx, s.stop), req)
}
