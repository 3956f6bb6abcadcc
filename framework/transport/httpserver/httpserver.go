// Package httpserver is the HTTP transport.Server: the service's handler
// behind Warren's HTTP conventions (package httptransport: request IDs,
// panics to 500, body limits, JSON errors), next to the health endpoints
//
//	GET /healthz   liveness; answers a self-check probe with the nonce
//	GET /readyz    readiness, 503 while not registered or draining
//
// over plain HTTP or TLS (WithTLS, published as https), with adaptive load
// shedding in front of the service (WithShedding, on by default; see
// docs/overload.md). The App builds one from its handler; a service with
// more transports hands the App others.
package httpserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/shed"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/transport"
)

// SelfCheckHeader carries the nonce: a probe sends it, /healthz echoes the
// process's nonce in it.
const SelfCheckHeader = "X-Warren-Selfcheck"

// Defaults.
const (
	DefaultAddr              = ":8080"
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultIdleTimeout is above the idle timeout of the callers a
	// service meets: Warren's client (45 s) and Go's http.DefaultTransport
	// (90 s). A caller closes an idle connection before the server does,
	// so it never sends a request on one the server is closing at that
	// moment (which fails with EOF, not retried for a POST without a key).
	DefaultIdleTimeout = 120 * time.Second
)

// Server serves one http.Handler; see the package doc.
type Server struct {
	handler http.Handler
	o       options

	mu       sync.Mutex
	ln       net.Listener
	srv      *http.Server
	closed   bool
	inFlight atomic.Int64 // service requests in their handlers
	// Connections with a request under way (StateActive: read, handled or
	// being answered; activeConn), and handlers still running on a
	// connection they hijacked: the requests a forced end of the drain
	// cuts.
	active, hjRunning atomic.Int64
	probeCl           *http.Client
	nonce             string // set by Listen, read by Probe after it
	shedMW            func(http.Handler) http.Handler

	// The hijacked connections (websockets, tunnels), which net/http's
	// Shutdown and Close leave alone: the drain waits for them and cuts
	// them, Close cuts them.
	hjMu     sync.Mutex
	hijacked map[*hijackedConn]struct{}
	cut      bool // Close or a drain's end: a connection hijacked now is closed

	draining   atomic.Bool   // Shutdown has begun: every answer closes its connection
	drainCh    chan struct{} // closed when the drain begins (transport.Draining)
	drainOnce  sync.Once
	lastActive atomic.Int64 // when a request last began or ended on any connection (Unix ns)
}

// Quiescing at the start of a drain (see quiesce).
const (
	quietPeriod = 250 * time.Millisecond
	maxQuiesce  = 5 * time.Second
)

var _ transport.Server = (*Server)(nil)

// New returns a server of h (everything but /healthz and /readyz).
func New(h http.Handler, opts ...Option) (*Server, error) {
	if h == nil {
		return nil, errors.New("httpserver: nil handler")
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{handler: h, o: o, drainCh: make(chan struct{})}
	if !o.noShed {
		if s.o.shedder == nil {
			l, err := shed.New()
			if err != nil {
				return nil, fmt.Errorf("httpserver: %w", err)
			}
			s.o.shedder = l
		}
		mw, err := shed.Middleware(s.o.shedder, o.shedOpts...)
		if err != nil {
			return nil, fmt.Errorf("httpserver: %w", err)
		}
		s.shedMW = mw
	}
	s.probeCl = &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: s.selfCheckTLS()},
		// The answer must come from this address, not from a redirect.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// Scheme is "https" with WithTLS, else "http".
func (s *Server) Scheme() string {
	if s.o.tls != nil {
		return "https"
	}
	return "http"
}

// Listen binds the address (WithAddr) and builds the server around h.
func (s *Server) Listen(h transport.Host) (net.Addr, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed { // nothing would release the port: Close has been
		return nil, errors.New("http: Listen after Close")
	}
	ln, err := net.Listen("tcp", s.o.addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen on %s: %w", s.o.addr, err)
	}
	addr := ln.Addr()
	if s.o.tls != nil {
		ln = tlsListener{Listener: tls.NewListener(ln, s.o.tls), handshakes: h.HandshakeLog()}
	}
	mux := http.NewServeMux()
	extra := func(http.Header) map[string]any {
		id := ""
		if h.InstanceID != nil {
			id = h.InstanceID()
		}
		return map[string]any{"service": h.Service, "version": h.Version, "instance": id}
	}
	live := health.Handler(h.Live, extra)
	mux.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(SelfCheckHeader) != "" {
			w.Header().Set(SelfCheckHeader, h.Nonce)
		}
		live.ServeHTTP(w, r)
	}))
	mux.Handle("GET /readyz", health.Handler(h.Ready, extra))
	svc := s.handler
	for _, mw := range s.o.middleware {
		svc = mw(svc)
	}
	mux.Handle("/", s.countInFlight(svc))
	root := httptransport.Handler(mux, h.Logger, s.o.maxBody, httptransport.WithBodyTimeouts(s.o.body, s.o.bodyIdle),
		httptransport.WithAccessLog(h.AccessLog))
	if s.shedMW != nil {
		// Outermost, so a refusal costs no decoding, logging or metrics;
		// /healthz and /readyz are exempt (shed.DefaultExempt).
		root = s.shedMW(root)
	}
	if s.o.tls != nil {
		root = withTLSState(root)
	}
	root = s.closeWhenDraining(root)
	srv := &http.Server{
		Handler: root,
		BaseContext: func(net.Listener) context.Context {
			return transport.WithDraining(context.Background(), s.drainCh)
		},
		ConnContext:       connContext,
		ReadHeaderTimeout: s.o.readHeader,
		IdleTimeout:       s.o.idle,
		MaxHeaderBytes:    64 << 10,
	}
	var shedState func(net.Conn, http.ConnState)
	if s.shedMW != nil {
		// The shedder can count the requests waiting on idle
		// connections, the queue a CPU-bound service has in front of
		// its handler (shed.WithWaitingTarget; off by default).
		shedState = s.o.shedder.ConnState
	}
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateActive || st == http.StateIdle {
			s.lastActive.Store(time.Now().UnixNano()) // for quiesce
		}
		s.countActive(c, st)
		if shedState != nil {
			shedState(c, st)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // closed while binding
		_ = ln.Close()
		return nil, errors.New("http: Listen after Close")
	}
	s.ln, s.srv = ln, srv
	s.nonce = h.Nonce
	return addr, nil
}

// Serve answers until Shutdown or Close, then returns nil.
func (s *Server) Serve() error {
	s.mu.Lock()
	srv, ln, closed := s.srv, s.ln, s.closed
	s.mu.Unlock()
	if closed {
		return nil
	}
	if srv == nil {
		return errors.New("http: Serve before Listen")
	}
	// JSONErrors: net/http's own 400/431 answers are JSON like every other.
	err := srv.Serve(activeListener{httptransport.JSONErrors(ln)})
	if errors.Is(err, http.ErrServerClosed) || (s.draining.Load() && errors.Is(err, net.ErrClosed)) {
		return nil // Shutdown closed the listener, before http.Server's own
	}
	return err
}

// Probe GETs endpoint/healthz with the self-check header and checks the
// answer is 200 and carries this process's nonce.
func (s *Server) Probe(ctx context.Context, endpoint string) error {
	url := endpoint + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set(SelfCheckHeader, "1")
	resp, err := s.probeCl.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s answered %s", url, resp.Status)
	case resp.Header.Get(SelfCheckHeader) != s.nonce:
		return fmt.Errorf("GET %s was answered by another process", url)
	}
	return nil
}

// Shutdown drains: it closes the listener, answers with Connection: close
// until callers stop using their kept-alive connections (quiesce), then
// runs http.Server.Shutdown bounded by ctx and waits for hijacked
// connections; what is still running when ctx ends is closed and reported
// with ErrDrainTimeout.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, ln := s.srv, s.ln
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	start := time.Now()
	if s.draining.CompareAndSwap(false, true) {
		_ = ln.Close() // new connections are refused from here on
		s.drainBegins()
		s.quiesce(ctx)
	}
	err := srv.Shutdown(ctx)
	if errors.Is(err, net.ErrClosed) {
		err = nil // the listener closed above
	}
	if err == nil {
		// net/http does not wait for hijacked connections: their handlers,
		// and the connections themselves, are calls in flight too.
		err = s.waitHijacked(ctx)
	}
	if err != nil {
		// Every request under way: the service's in their handlers, and
		// also a health check, and an answer whose handler has returned
		// while its last bytes wait on a slow reader (active).
		left := max(s.inFlight.Load(), s.active.Load()+s.hjRunning.Load())
		hj := s.hijackedCount()
		srv.Close()
		s.cutHijacked()
		if left == 0 && hj == 0 && ctx.Err() != nil {
			// Only connections without a request were left (net/http
			// counts one that has sent nothing as idle only after 5 s):
			// closing them cut nothing, as grpcserver says of its idle ones.
			return nil
		}
		what := fmt.Sprintf("%d HTTP request(s)", left)
		if hj > 0 {
			what += fmt.Sprintf(" and %d hijacked connection(s)", hj)
		}
		return fmt.Errorf("%w: %s still in flight after %s: %w",
			transport.ErrDrainTimeout, what, time.Since(start).Round(time.Millisecond), causeOf(ctx, err))
	}
	return nil
}

// drainBegins tells the calls being served (transport.Draining), so
// long-lived ones (websockets) end on their own terms instead of holding
// the drain until its timeout cuts them.
func (s *Server) drainBegins() { s.drainOnce.Do(func() { close(s.drainCh) }) }

// quiesce lets callers stop using their kept-alive connections before
// http.Server.Shutdown closes the idle ones. A connection closed while
// idle can cross a request its caller has just sent on it: the caller
// reads EOF or a reset, cannot tell whether the request was acted on, and
// may not retry a POST (6 to 11 calls failed so in each run of
// TestShutdown_RestartAtTheSameAddressFailsNoCall). While draining,
// every answer says Connection: close, so each connection in use carries
// one more request and is closed by its caller's side of the exchange;
// once no request has begun or ended for quietPeriod, the connections
// left have been idle that long and their callers have moved on. Bounded
// by maxQuiesce and half of ctx's time; no wait if callers left already
// (the App's withdraw and grace period come first).
func (s *Server) quiesce(ctx context.Context) {
	end := time.Now().Add(maxQuiesce)
	if dl, ok := ctx.Deadline(); ok {
		end = time.Now().Add(min(maxQuiesce, time.Until(dl)/2))
	}
	for {
		now := time.Now()
		quiet := now.Sub(time.Unix(0, s.lastActive.Load()))
		if quiet >= quietPeriod || !now.Before(end) {
			return
		}
		t := time.NewTimer(min(quietPeriod-quiet, end.Sub(now)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// closeWhenDraining makes every answer given while draining close its
// connection (see quiesce).
func (s *Server) closeWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// waitHijacked waits, until ctx ends, for the handlers still running
// (only hijacking ones are, once http.Server.Shutdown has returned) and
// for the hijacked connections to be closed.
func (s *Server) waitHijacked(ctx context.Context) error {
	wait := time.Millisecond
	for s.inFlight.Load() > 0 || s.hijackedCount() > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
	return nil
}

// causeOf is why ctx ended (the drain timeout, or a forced exit), when
// Shutdown's error is that ctx ended.
func causeOf(ctx context.Context, err error) error {
	if errors.Is(err, ctx.Err()) {
		return context.Cause(ctx)
	}
	return err
}

// Close stops at once. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.drainBegins() // and ends: what still listens for it stops now
	s.probeCl.CloseIdleConnections()
	s.cutHijacked()
	var err error
	if s.srv != nil {
		// Closes the listener if Serve has taken it (and Shutdown has not
		// closed it already).
		if err = s.srv.Close(); errors.Is(err, net.ErrClosed) {
			err = nil
		}
	}
	if s.ln != nil {
		// Serve may not have run (a start-up that failed after Listen,
		// the App's abort), and http.Server knows only the listeners
		// Serve took: close it here too, or the port stays bound.
		if lerr := s.ln.Close(); lerr != nil && !errors.Is(lerr, net.ErrClosed) && err == nil {
			err = lerr
		}
	}
	return err
}

// Shedder returns the server's load shedder, nil with WithoutShedding.
func (s *Server) Shedder() *shed.Limiter { return s.o.shedder }

// InFlight is the number of service requests being handled now.
func (s *Server) InFlight() int64 { return s.inFlight.Load() }

func (s *Server) countInFlight(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		hw := &hijackWriter{ResponseWriter: w, s: s}
		defer s.handlerDone(hw)
		h.ServeHTTP(hw, r)
	})
}

func (s *Server) handlerDone(hw *hijackWriter) {
	s.inFlight.Add(-1)
	if hw.took.Load() {
		s.hjRunning.Add(-1)
	}
}

// hijackWriter records the connection its handler hijacks.
type hijackWriter struct {
	http.ResponseWriter
	s    *Server
	took atomic.Bool // the handler hijacked its connection
}

// Hijack hands the connection over, tracked until it is closed.
func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !w.took.Swap(true) {
		w.s.hjRunning.Add(1) // its connection is no longer active
	}
	hc := &hijackedConn{Conn: c, s: w.s}
	w.s.hjMu.Lock()
	cut := w.s.cut
	if !cut {
		if w.s.hijacked == nil {
			w.s.hijacked = map[*hijackedConn]struct{}{}
		}
		w.s.hijacked[hc] = struct{}{}
	}
	w.s.hjMu.Unlock()
	if cut { // hijacked as the server stopped: it serves no more
		_ = c.Close()
	}
	return hc, rw, nil
}

// Flush keeps http.Flusher working through the wrapper.
func (w *hijackWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach deadlines and the rest.
func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// hijackedConn is a hijacked connection; closing it untracks it.
type hijackedConn struct {
	net.Conn
	s *Server
}

// NetConn returns the connection it wraps.
func (c *hijackedConn) NetConn() net.Conn { return c.Conn }

func (c *hijackedConn) Close() error {
	c.s.hjMu.Lock()
	delete(c.s.hijacked, c)
	c.s.hjMu.Unlock()
	return c.Conn.Close()
}

func (s *Server) hijackedCount() int {
	s.hjMu.Lock()
	defer s.hjMu.Unlock()
	return len(s.hijacked)
}

// cutHijacked closes the hijacked connections, and any hijacked from now
// on; their handlers see their reads and writes fail.
func (s *Server) cutHijacked() {
	s.hjMu.Lock()
	s.cut = true
	conns := s.hijacked
	s.hijacked = nil
	s.hjMu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

// selfCheckTLS is the probe's client TLS configuration (nil for plain
// HTTP); see WithSelfCheckTLS.
func (s *Server) selfCheckTLS() *tls.Config {
	switch {
	case s.o.tls == nil:
		return nil
	case s.o.selfCheckTLS != nil:
		return s.o.selfCheckTLS
	}
	return tlsconf.SelfCheck(s.o.tls)
}
