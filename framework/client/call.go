package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/requestid"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/internal/downstream"
)

// CallOption adjusts one call.
type CallOption func(*request)

// Idempotent declares that the call may be applied twice without harm, so
// it is retried on any retryable failure, including those after which the
// server may have acted (reset connections, timeouts, 502, 504). GET, HEAD
// and OPTIONS are idempotent already; anything else is retried only when
// no method can have run (refused or failed dial, a load shedder's 503,
// a Warren server's 408 body_timeout).
func Idempotent() CallOption { return Idempotency(true) }

// Idempotency overrides whether the call is idempotent, whatever its method
// and the method's annotation say: Idempotency(false) keeps a GET from
// being retried after failures where the server may have acted (a GET
// with side effects); Idempotency(true) is Idempotent.
func Idempotency(idempotent bool) CallOption {
	return func(r *request) { r.idempotent = idempotent }
}

// NoRetry makes the call one attempt: no retry on any failure, not even a
// 503 or a 429, and no retry budget spent. The client's per-attempt
// timeout does not apply; Timeout does.
func NoRetry() CallOption { return func(r *request) { r.noRetry = true } }

// Timeout bounds the whole call — every attempt and the waits between
// them — to d, within the context's own deadline. d <= 0 leaves the
// context's deadline alone.
func Timeout(d time.Duration) CallOption { return func(r *request) { r.timeout = d } }

type callOptionsKey struct{}

// WithCallOptions returns a context whose calls through a Warren client
// (client.Call, Invoke, and the endpoints of generated clients) take opts
// after their own: per-call headers, Timeout, NoRetry, Idempotency. It is
// how a caller of a generated client, whose methods take (ctx, req), passes
// options to one call:
//
//	ctx := client.WithCallOptions(ctx, client.Header("X-Tenant", "t1"), client.Timeout(time.Second))
//	resp, err := payments.Charge(ctx, req)
//
// Options already in ctx come first, so an inner WithCallOptions wins.
func WithCallOptions(ctx context.Context, opts ...CallOption) context.Context {
	prev, _ := ctx.Value(callOptionsKey{}).([]CallOption)
	return context.WithValue(ctx, callOptionsKey{}, append(slices.Clip(prev), opts...))
}

// callOptions are the options WithCallOptions put in ctx.
func callOptions(ctx context.Context) []CallOption {
	opts, _ := ctx.Value(callOptionsKey{}).([]CallOption)
	return opts
}

// Keyed makes the call safe to retry like an idempotent one: it gets one
// idempotency key (package idempotency), sent on every attempt in the
// Idempotency-Key header, and a service that wraps the method's effect in
// idempotency.Do applies it once however many attempts reach it. Keyed
// calls are retried after timeouts and resets, and get the adaptive
// per-attempt deadline. Inside a keyed call being served, the key is
// derived from the incoming one, so a retried upstream call repeats the
// same downstream keys.
func Keyed() CallOption { return func(r *request) { r.keyed = true } }

// HashKey routes the call by key under a balancer.ConsistentHash balancer.
// It is the same as passing a context made with balancer.WithKey.
func HashKey(key string) CallOption { return func(r *request) { r.key, r.hasKey = key, true } }

// Header sets a request header.
func Header(key, value string) CallOption {
	return func(r *request) {
		if r.header == nil {
			r.header = http.Header{}
		}
		r.header.Set(key, value)
	}
}

// request is one call as it goes to an instance's endpoint; it is built
// once and reused by every attempt, two of which may run at once (a hedge
// beside the attempt it hedges): attempts only read it, but for the
// answer, which the first attempt to get one claims (won).
type request struct {
	method     string
	path       string
	body       []byte
	out        any
	header     http.Header
	idempotent bool
	keyed      bool
	noRetry    bool
	timeout    time.Duration
	apiMethod  string // Method: the API method, for spans and per-method series
	key        string
	hasKey     bool

	last   atomic.Pointer[balancer.Target] // the latest attempt's instance (attemptAny)
	note   callNote                        // its attempts' timeouts, for the concurrency limit
	won    atomic.Bool
	answer []byte // the winning answer's body, its status and instance
	status int
	from   string

	// sent0 is the first attempt's body state (instanceHTTP.call), held
	// here so the only attempt most calls make allocates none of its own;
	// sent0Taken says an attempt has claimed it. A hedge or retry makes
	// its own: the hedge runs beside the first attempt, and net/http may
	// still be reading the first attempt's body when a retry starts.
	sent0      wroteRequest
	sent0Taken atomic.Bool
}

// sendState returns the body state of one attempt: the request's own for
// the first attempt to ask, a new one for every other.
func (r *request) sendState() *wroteRequest {
	if r.sent0Taken.CompareAndSwap(false, true) {
		return &r.sent0
	}
	return &wroteRequest{}
}

// decode decodes the winning answer into r.out. It runs once the attempts
// are over, so only one ever writes to r.out. The instance answered: an
// answer that does not decode is no failure of the instance, and the same
// bytes would come back from a retry.
func (r *request) decode() error {
	if r.out == nil || r.status == http.StatusNoContent || len(bytes.TrimSpace(r.answer)) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.answer, r.out); err != nil {
		return &decodeErr{err: fmt.Errorf("%s %s from %s: %w", r.method, strings.SplitN(r.path, "?", 2)[0], r.from, err)}
	}
	return nil
}

// Call sends req as JSON with method to path on one instance of the
// service and decodes the JSON answer into a Resp. GET, HEAD, DELETE and
// OPTIONS send no body (Warren servers read their parameters from the path
// and query, which generated clients fill in). A non-2xx answer is an *Error; retried
// failures are a *retry.Error wrapping each attempt's error.
func Call[Req, Resp any](ctx context.Context, c *Client, method, path string, req Req, opts ...CallOption) (Resp, error) {
	var resp Resp
	err := c.Invoke(ctx, method, path, req, &resp, opts...)
	return resp, err
}

// NewEndpoint returns the go-kit endpoint of one method of the service,
// the factory generated clients build their per-method endpoints from
// (MakeHTTPClientEndpoints): its request must be a Req, sent with method to
// path(req) as Call sends it; its response is the Resp the answer decodes
// to. Endpoint middleware wraps it like any go-kit endpoint.
func NewEndpoint[Req, Resp any](c *Client, method string, path func(Req) string, opts ...CallOption) endpoint.Endpoint {
	return func(ctx context.Context, r any) (any, error) {
		req, ok := r.(Req)
		if !ok {
			return nil, fmt.Errorf("client %s %s: request is %T, want %T", c.service, method, r, req)
		}
		// Call's body, sending r as it came: passing req would box it
		// into an interface again, an allocation per call.
		var resp Resp
		if err := c.Invoke(ctx, method, path(req), r, &resp, opts...); err != nil {
			return nil, err
		}
		return resp, nil
	}
}

// Endpoint is NewEndpoint for a method whose path does not depend on the
// request.
func Endpoint[Req, Resp any](c *Client, method, path string, opts ...CallOption) endpoint.Endpoint {
	return NewEndpoint[Req, Resp](c, method, func(Req) string { return path }, opts...)
}

// Invoke is Call without type parameters: in is encoded as the JSON body
// (unless the method is GET, HEAD, DELETE or OPTIONS, or in is nil) and the answer is
// decoded into out (unless out is nil or the answer has no body).
func (c *Client) Invoke(ctx context.Context, method, path string, in, out any, opts ...CallOption) (err error) {
	if c == nil {
		return errors.New("client: call on a nil *Client")
	}
	if c.closed.Load() {
		return fmt.Errorf("client %s: %w", c.service, ErrClosed)
	}
	if err := checkMethod(method); err != nil {
		return fmt.Errorf("client %s: %w", c.service, err)
	}
	// The wait is the called service's, not the serving instance's: its
	// load shedder leaves it out of its latency signal (internal/downstream).
	defer downstream.Begin(ctx)()
	if err := checkPath(path); err != nil {
		return fmt.Errorf("client %s: %s %w", c.service, method, err)
	}
	r := &request{method: method, path: path, out: out}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		r.idempotent = true
	}
	for _, o := range opts {
		o(r)
	}
	for _, o := range callOptions(ctx) { // the caller's, for this call: they win
		o(r)
	}
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	if r.apiMethod != "" {
		var done func(error)
		ctx, done = c.observeMethod(ctx, r.apiMethod)
		defer func() { done(err) }()
	}
	// The limit first: a call it refuses (a fallback's cue, thousands a
	// second when callers outnumber it) costs no encoding or key.
	if c.limiter != nil {
		tok, ok := c.limiter.Acquire()
		if !ok {
			return fmt.Errorf("client %s: %w", c.service, climit.ErrLimited)
		}
		defer func() { tok.Release(c.limitOutcome(err, &r.note)) }()
	}
	if in != nil && sendsBody(method) {
		b, err := json.Marshal(in)
		if err != nil {
			return Unencodable("client "+c.service, err)
		}
		r.body = b
	}
	if r.hasKey {
		ctx = balancer.WithKey(ctx, r.key)
	}
	if r.keyed {
		r.header = r.header.Clone()
		if r.header == nil {
			r.header = http.Header{}
		}
		// One key per logical call: derived from the key of the call
		// being served, if any, so a retried upstream call sends the
		// same keys downstream; fresh otherwise.
		r.header.Set(idempotency.Header, idempotency.Derive(ctx, method+" "+path))
	}
	if r.noRetry {
		if _, err := c.attemptAny(ctx, r, &r.last, &r.note); err != nil {
			return c.unreachable(ctx, err)
		}
		return r.decode()
	}
	err = c.methodPolicy(r.apiMethod).Do(ctx, r.idempotent || r.keyed, func(ctx context.Context, _ int) error {
		c.countAttempt(r.note.begin())
		_, err := c.attemptAny(ctx, r, &r.last, &r.note)
		r.note.ended(err)
		return err
	})
	if err != nil {
		if errors.Is(err, retry.ErrBudgetExhausted) {
			c.obs.RetryBudgetExhausted(c.service)
		}
		return c.unreachable(ctx, err)
	}
	return r.decode()
}

// attemptAny makes one attempt, of any transport's request, on an instance
// other than the previous attempt's (when there is another) and none an
// earlier attempt of the call failed on (while one may take traffic); it returns
// the instance endpoint's response. last is atomic because a hedge runs
// beside the attempt it hedges, and avoids that attempt's instance.
// note, if not nil, learns where attempts that timed out spent their time.
func (c *Client) attemptAny(ctx context.Context, req any, last *atomic.Pointer[balancer.Target], note *callNote) (any, error) {
	// An instance that leaves discovery between pick and call is skipped
	// without sending anything; a few re-picks cover a rolling restart.
	for range 4 {
		if c.closed.Load() { // closed between attempts: no more of them
			return nil, fmt.Errorf("client %s: %w", c.service, ErrClosed)
		}
		avoid := last.Load()
		t, err := c.bal.Pick(ctx, avoid)
		if errors.Is(err, balancer.ErrNoEndpoints) {
			t, err = c.pickAfterDiscovery(ctx, avoid)
		}
		if err != nil {
			return nil, err
		}
		if note != nil {
			t = c.elsewhere(ctx, &note.failed, t)
		}
		if t == avoid {
			t = c.probeInstead(ctx, t)
		}
		last.Store(t)
		var rec *answered // kept for the concurrency limit only
		var before uint64
		if c.limiter != nil {
			rec = c.answers.of(t)
			before = rec.count.Load()
		}
		resp, err := t.Call(ctx, req)
		if rec != nil {
			if err != balancer.ErrRetired && !hedgeCancelled(ctx) {
				rec.record(err)
			}
			if note != nil && attemptTimedOut(ctx, err) {
				if rec.count.Load() == before {
					note.silent.Add(1)
				} else {
					note.slow.Add(1)
				}
			}
		}
		if c.spill != nil {
			c.spill.record(ctx, t, err)
		}
		if note != nil && err != nil && err != balancer.ErrRetired && !pending(err) && !hedgeCancelled(ctx) {
			note.failed.add(t)
		}
		if err != nil && err != balancer.ErrRetired && pending(err) {
			// An earlier attempt of this keyed call holds the key there:
			// the next ask may go anywhere, and must not be pushed back to
			// the instance that failed before. Any other failure, an
			// answer such as a 429 (the instance's own rate limit, say)
			// included, sends the next attempt elsewhere when it can.
			last.CompareAndSwap(t, nil)
		}
		if err != balancer.ErrRetired {
			return resp, err
		}
	}
	return nil, fmt.Errorf("client %s: %w", c.service, balancer.ErrNoEndpoints)
}

// probeInstead is called when a retry or hedge got the very instance it
// avoids: every other one is ejected. It has the ejected ones probed at
// once (outlier.Detector.ProbeEjected) and returns the balancer's new
// choice, or avoid. Without it, an instance dying under load (the kernel
// still accepts, the process no longer answers) took every attempt and
// hedge while a stall had the healthy one ejected, until they all failed
// together and their retries emptied the budget (report j60a F8).
func (c *Client) probeInstead(ctx context.Context, avoid *balancer.Target) *balancer.Target {
	if c.detector == nil {
		return avoid
	}
	if ejected, _ := c.detector.Ejected(); ejected == 0 {
		return avoid
	}
	c.detector.ProbeEjected()
	if t, err := c.bal.Pick(ctx, avoid); err == nil && t != nil {
		return t
	}
	return avoid
}

// pending reports whether err says an earlier attempt of the same call is
// still running where this one landed (retry.Pending).
func pending(err error) bool {
	var p retry.Pending
	return errors.As(err, &p) && p.RetryPending()
}

// pickAfterDiscovery waits for discovery's first answer, so a call made
// right after New does not fail on a set that is still being filled.
func (c *Client) pickAfterDiscovery(ctx context.Context, avoid *balancer.Target) (*balancer.Target, error) {
	select {
	case <-c.ep.Ready():
	default:
		if err := c.ep.Wait(ctx); err != nil {
			if errors.Is(err, ErrClosed) {
				return nil, fmt.Errorf("client %s: %w", c.service, ErrClosed)
			}
			return nil, fmt.Errorf("client %s: waiting for discovery: %w", c.service, err)
		}
	}
	t, err := c.bal.Pick(ctx, avoid)
	if err != nil {
		if derr := c.ep.DiscoveryErr(); derr != nil && errors.Is(err, balancer.ErrNoEndpoints) {
			// Empty because discovery fails, not because nothing is
			// registered: say why (report j47a: a refused account read as
			// "no endpoints available" on every call).
			return nil, fmt.Errorf("client %s: %w; discovery is failing: %w", c.service, err, derr)
		}
		return nil, fmt.Errorf("client %s: %w", c.service, err)
	}
	return t, nil
}

// instanceHTTP calls one instance over its own transport.
type instanceHTTP struct {
	*instanceShared
	base, addr string
	id         string // the instance's registry ID
	once       sync.Once
	hc         atomic.Pointer[http.Client]
	tr         atomic.Pointer[http.Transport]
}

// instanceShared is what every instance of one client has in common, held
// once: a client of 10k instances keeps one copy, not 10k.
type instanceShared struct {
	cfg     *config
	obs     Observer
	inst    InstanceObserver // obs, if it is one
	service string
	maxBody int64
	live    *liveIDs
	timeout atomic.Pointer[timeoutValue] // the latest TimeoutHeader value sent
}

// timeoutValue is a TimeoutHeader value sent, and the milliseconds it says.
type timeoutValue struct {
	ms int64
	v  string
}

// timeoutHeader returns the TimeoutHeader value for d left. Calls under a
// fixed per-attempt timeout mostly have the same milliseconds left as the
// call before: they reuse the text it sent, formatted once. Each attempt
// still gets a slice of its own (one allocation): a RoundTripper wrapper
// that edits its request's value in place, which http.RoundTripper's
// contract forbids but happens, must change only that request, not what
// concurrent calls send (TestClient_ATimeoutHeaderEditedInPlaceStaysWithItsRequest).
func (s *instanceShared) timeoutHeader(d time.Duration) []string {
	ms := max(d.Milliseconds(), 1) // what FormatTimeout writes
	if tv := s.timeout.Load(); tv != nil && tv.ms == ms {
		return []string{tv.v}
	}
	tv := &timeoutValue{ms: ms, v: httptransport.FormatTimeout(d)}
	s.timeout.Store(tv)
	return []string{tv.v}
}

// Close drops the instance's idle connections and reports its release
// unless a newer record of the same instance is in the set (liveIDs);
// the endpointer calls it once the instance has left discovery and its
// last call has returned.
func (h *instanceHTTP) Close() error {
	if tr := h.tr.Load(); tr != nil {
		tr.CloseIdleConnections()
	}
	if h.live.done(h.id) {
		h.obs.InstanceReleased(h.service, h.id)
	}
	return nil
}

func (h *instanceHTTP) call(ctx context.Context, x any) (any, error) {
	// Counted here, inside the target's in-flight window, so it can never
	// come after the instance's InstanceReleased (which its closer sends
	// once the last call has returned).
	h.obs.Picked(h.service, h.id)
	r := x.(*request)
	// The body is a *bytes.Reader: net/http writes the headers and a body
	// of a type it knows in one packet (a body of any other type costs a
	// flush of its own: an extra packet and read per call). Whether the
	// request left whole is what the transport reports after writing it.
	reqCtx, body := ctx, io.Reader(nil)
	var sent *wroteRequest
	if r.body != nil {
		sent = r.sendState()
		sent.trace.WroteRequest = sent.wrote
		sent.body.Reset(r.body)
		reqCtx, body = httptrace.WithClientTrace(ctx, &sent.trace), &sent.body
	}
	hr, err := http.NewRequestWithContext(reqCtx, r.method, h.base+r.path, body)
	if err != nil {
		return nil, &decodeErr{err: err, request: true} // the same on every instance
	}
	for k, v := range r.header {
		hr.Header[k] = v
	}
	if r.body != nil {
		hr.Header["Content-Type"] = jsonContentType // shared: net/http only reads it
	}
	if id, ok := requestid.FromContext(ctx); ok {
		hr.Header.Set(requestid.Header, id)
	}
	if dl, ok := ctx.Deadline(); ok { // the handler's deadline too (httptransport.RequestTimeout)
		hr.Header[httptransport.TimeoutHeader] = h.timeoutHeader(time.Until(dl))
	}
	resp, err := h.do(hr)
	if err != nil {
		if sent != nil && !sent.ok.Load() {
			// The request never left whole: a Warren handler decodes the
			// whole body before the method runs, so the service cannot
			// have acted.
			return nil, &unsentError{err}
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readBody(resp, h.maxBody)
	if err != nil {
		return nil, err // cut off mid-body: retryable like a reset
	}
	if int64(len(b)) > h.maxBody {
		return nil, fmt.Errorf("%s %s: %w (limit %d)", r.method, r.path, ErrResponseTooLarge, h.maxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, decodeError(resp.StatusCode, resp.Header, b, h.addr, h.id)
	}
	if r.won.CompareAndSwap(false, true) {
		r.answer, r.status, r.from = b, resp.StatusCode, h.addr
	}
	return nil, nil
}

var jsonContentType = []string{"application/json"}

// do sends hr as the instance's http.Client does, without the client's
// per-request bookkeeping: for a request made as call makes it (a URL
// without user info, a header) and a client without a Jar or a Timeout
// whose CheckRedirect keeps the last response, http.Client.Do only clones
// the header (for redirects that are never followed), sends hr through
// its transport and wraps a failure in a *url.Error; do does the same,
// six allocations and a header copy fewer per attempt
// (BenchmarkCallPathInMemory). What Client.Do says of a response with no
// body, of a 3xx whose Location does not parse, of a RoundTripper that
// returns neither a response nor an error, and of a TLS answer from a
// plaintext server, do says too. A URL with user info goes through
// Client.Do, which turns it into an Authorization header.
func (h *instanceHTTP) do(hr *http.Request) (*http.Response, error) {
	hc := h.client()
	rt := hc.Transport
	if hr.URL.User != nil || rt == nil {
		// A WithRoundTripper wrapper that returned nil leaves the client
		// net/http's DefaultTransport, as it always did; only Do knows.
		return hc.Do(hr)
	}
	resp, err := rt.RoundTrip(hr)
	if err != nil {
		if resp != nil {
			log.Printf("RoundTripper returned a response & error; ignoring response") // as net/http's send
		}
		// The error itself, not one it wraps, as net/http's send checks.
		if tlsErr, ok := err.(tls.RecordHeaderError); ok && string(tlsErr.RecordHeader[:]) == "HTTP/" { //nolint:errorlint
			err = http.ErrSchemeMismatch
		}
		return nil, urlError(hr, err)
	}
	if resp == nil {
		return nil, urlError(hr, fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", rt))
	}
	if resp.Body == nil {
		if resp.ContentLength > 0 && hr.Method != http.MethodHead {
			return nil, urlError(hr, fmt.Errorf("http: RoundTripper implementation (%T) returned a *Response with content length %d but a nil Body", rt, resp.ContentLength))
		}
		resp.Body = io.NopCloser(strings.NewReader(""))
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// Client.Do would make the request to follow it, then keep this
		// answer (CheckRedirect); only a Location it cannot parse fails
		// the call. (A 307 or 308 of a request whose body cannot be
		// sent again is not followed at all: call's can be.)
		if loc := resp.Header.Get("Location"); loc != "" {
			if _, perr := hr.URL.Parse(loc); perr != nil {
				_ = resp.Body.Close()
				err := urlError(hr, fmt.Errorf("failed to parse Location header %q: %v", loc, perr))
				if resp.Request != nil && resp.Request.URL != nil {
					// The URL the answer came from, as Client.Do names it: a
					// wrapper may have sent the request on elsewhere.
					err.(*url.Error).URL = stripPassword(resp.Request.URL)
				}
				return nil, err
			}
		}
	}
	return resp, nil
}

// urlError wraps err as http.Client.Do does.
func urlError(hr *http.Request, err error) error {
	return &url.Error{Op: hr.Method[:1] + strings.ToLower(hr.Method[1:]), URL: hr.URL.String(), Err: err}
}

// stripPassword is u as http.Client.Do's errors show it: a password in it
// replaced by ***.
func stripPassword(u *url.URL) string {
	if _, has := u.User.Password(); has {
		return strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1)
	}
	return u.String()
}

// readBody reads an answer's body, up to max bytes and one more, which
// tells a body over the limit. A body of known length is read into a
// buffer of its size: no growing, no LimitReader.
func readBody(resp *http.Response, max int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= max {
		b := make([]byte, n)
		// The last Read returns io.EOF with the data, so net/http reuses
		// the connection as it does after ReadAll.
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, max+1))
}

// sendsBody reports whether a call with method carries in as its body:
// only the methods whose Warren server decodes a body.
func sendsBody(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return false
	}
	return true
}

// wroteRequest is one attempt's body, and learns from net/http whether
// the request was written whole (headers and body), on this connection or
// on a fresh one net/http replayed it on. The reader and the trace share
// one allocation (or none: request.sent0). An attempt has a reader of its
// own: net/http may still be reading it after the attempt has returned
// (an answer that came before the body was written), while a hedge or
// retry sends the same bytes.
type wroteRequest struct {
	trace httptrace.ClientTrace
	ok    atomic.Bool
	body  bytes.Reader
}

func (w *wroteRequest) wrote(info httptrace.WroteRequestInfo) {
	if info.Err == nil {
		w.ok.Store(true)
	}
}

// unsentError is a transport failure before the whole request was
// written: retryable for every method.
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() + " (request not sent)" }
func (e *unsentError) Unwrap() error { return e.err }

// RetryClass implements retry.Classer.
func (e *unsentError) RetryClass() retry.Class {
	if errors.Is(e.err, context.Canceled) {
		return retry.Fatal // the caller gave up
	}
	// A deadline too: the attempt's own may be retried for any method, and
	// the policy stops by itself when the caller's has passed.
	return retry.Unprocessed
}

// ErrBadMethod is the answer, before anything is sent, to a call whose
// method is empty or not an HTTP token ("G ET"): net/http would send an
// empty one as GET.
var ErrBadMethod = svcerr.New(svcerr.InvalidArgument, "bad_method", "not an HTTP method")

// checkMethod refuses a method that is empty or not an HTTP token.
func checkMethod(m string) error {
	if m == "" {
		return fmt.Errorf("%w: empty", ErrBadMethod)
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return fmt.Errorf("%w: %q", ErrBadMethod, m)
		}
	}
	return nil
}

// ErrUnroutablePath is the answer, before anything is sent, to a call
// whose path an HTTP server would not route as written (see checkPath).
var ErrUnroutablePath = svcerr.New(svcerr.InvalidArgument, "unroutable_path", "path cannot be routed as written")

// checkPath refuses a path with a "." or ".." segment, or an empty one
// inside it ("//"): servers clean those away before routing (Go's mux
// answers a redirect to the cleaned path), so a call whose path parameter
// is "", "." or ".." would reach another route, or none, and fail with an
// answer about that route instead of its own. (An empty parameter at the
// end of a path is not caught: "/items/" may be a route of its own.)
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		// Appended to the instance's base URL, "items/1" reads as a port.
		return fmt.Errorf("%q: %w: it must start with /", path, ErrUnroutablePath)
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if !strings.Contains(path, "/.") && !strings.Contains(path, "//") {
		return nil
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs[1:] {
		if seg == "." || seg == ".." || (seg == "" && i+2 < len(segs)) {
			return fmt.Errorf("%s: %w: segment %q (a path parameter cannot be empty, \".\" or \"..\")", path, ErrUnroutablePath, seg)
		}
	}
	return nil
}
