package shed

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// Code is the error code of an overload answer, in the JSON error body
// Warren servers write: {"error": "...", "code": "overloaded"}. A Warren
// client rebuilds it as svcerr.ErrOverloaded.
const Code = svcerr.CodeOverloaded

// DefaultExempt lists the routes Middleware never sheds unless told
// otherwise: liveness and readiness must answer under any load, or an
// orchestrator would restart or withdraw a busy instance.
var DefaultExempt = []string{"GET /healthz", "GET /readyz"}

// HTTPOption configures Middleware. An option given a bad value makes
// Middleware fail with an error that names it.
type HTTPOption func(*httpSettings) error

type httpSettings struct {
	exempt        []string
	retryAfter    time.Duration
	maxRetryAfter time.Duration
	onShed        func(r *http.Request, why Reason)
}

// WithExempt adds routes that are never shed, as net/http ServeMux
// patterns ("GET /admin/", "POST /payments/{id}/refund"): the per-route
// opt-out, for work that must not be refused (a payment's second step, a
// cheap cached read that relieves load).
func WithExempt(patterns ...string) HTTPOption {
	return func(s *httpSettings) error { s.exempt = append(s.exempt, patterns...); return nil }
}

// WithRetryAfter sets the Retry-After range of overload answers (default
// 1s, HTTP's smallest, to 5s): it grows from min to max with the share of
// requests the instance has been shedding lately (Limiter.ShedRatio), so
// that under a deep overload the callers it turns away stay away long
// enough for their returns not to be a load of their own. It tells callers
// how long to leave this instance alone; Warren's client tries another
// instance at once.
func WithRetryAfter(min, max time.Duration) HTTPOption {
	return func(s *httpSettings) error {
		if min < time.Second || max < min {
			return fmt.Errorf("shed.WithRetryAfter(%s, %s): want 1s ≤ min ≤ max", min, max)
		}
		s.retryAfter, s.maxRetryAfter = min, max
		return nil
	}
}

// WithOnShed calls f for every refused request (for logs; keep it quick:
// it runs on the path that must stay cheap).
func WithOnShed(f func(r *http.Request, why Reason)) HTTPOption {
	return func(s *httpSettings) error { s.onShed = f; return nil }
}

// Middleware returns net/http middleware that asks l about every request
// except the exempt routes (DefaultExempt and WithExempt) and answers the
// refused ones at once with 503, Retry-After and the body
// {"error": "server overloaded, try another instance", "code": "overloaded"}.
// A request whose caller has already gone is dropped unanswered.
//
// Put it outermost, so a refused request costs no decoding or logging. An
// invalid or conflicting pattern is an error.
func Middleware(l *Limiter, opts ...HTTPOption) (func(http.Handler) http.Handler, error) {
	s := httpSettings{retryAfter: time.Second, maxRetryAfter: 5 * time.Second}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("shed: nil HTTP option")
		}
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	patterns := append(append([]string(nil), DefaultExempt...), s.exempt...)
	mux, err := exemptMux(patterns)
	if err != nil {
		return nil, err
	}
	exempt := newExemption(mux, patterns)
	minRA, spanRA := s.retryAfter.Seconds(), (s.maxRetryAfter - s.retryAfter).Seconds()
	body := []byte(`{"error":"` + svcerr.ErrOverloaded.Message + `","code":"` + Code + `"}` + "\n")
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if exempt.match(r) {
				next.ServeHTTP(w, r)
				return
			}
			if r.Context().Err() != nil {
				return // the caller left; nobody would read an answer
			}
			tok, why := l.Acquire()
			if why != Admitted {
				if s.onShed != nil {
					s.onShed(r, why)
				}
				h := w.Header()
				h.Set("Retry-After", strconv.Itoa(int(math.Round(minRA+spanRA*l.ShedRatio()))))
				h.Set("Content-Type", "application/json; charset=utf-8")
				h.Set("X-Content-Type-Options", "nosniff")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write(body)
				return
			}
			r = r.WithContext(tok.watch(r.Context())) // before the defer copies tok
			if r.Method == http.MethodConnect || r.Header["Upgrade"] != nil {
				// A handler that may take the connection over (a
				// websocket) is released when it does: see upgradeWriter.
				u := &upgradeWriter{ResponseWriter: w, tok: tok}
				defer u.release()
				next.ServeHTTP(u, r)
				return
			}
			defer tok.Release()
			next.ServeHTTP(w, r)
		})
	}, nil
}

// exemptMux builds a ServeMux holding the exempt patterns, so they match
// exactly as the service's routes do. Duplicates are dropped; ServeMux
// panics on a bad or conflicting pattern, which becomes an error here.
func exemptMux(patterns []string) (mux *http.ServeMux, err error) {
	mux = http.NewServeMux()
	seen := map[string]bool{}
	nop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, p := range patterns {
		if seen[p] {
			continue
		}
		seen[p] = true
		if err := register(mux, p, nop); err != nil {
			return nil, err
		}
	}
	return mux, nil
}

func register(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("shed: exempt route %q: %v", pattern, p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// exemption tells the exempt routes' requests. Matching a request against
// a ServeMux costs more than the rest of the shedder on every request
// (path cleaning, a lock, two tree walks and, on no match, a map of the
// methods that would match), so requests whose path cannot match any
// exempt pattern are told apart first: each pattern's path up to its
// first wildcard (its literal prefix) must begin the request's path, or
// be the path with a slash added (ServeMux redirects /x to a /x/
// pattern); the unescaped path is compared, as ServeMux compares
// unescaped segments. Only the requests that pass, and those ServeMux
// would clean or leave uncleaned (CONNECT), are matched by the ServeMux.
type exemption struct {
	mux      *http.ServeMux
	prefixes []string
}

func newExemption(mux *http.ServeMux, patterns []string) exemption {
	e := exemption{mux: mux}
	for _, p := range patterns {
		i := strings.IndexByte(p, '/') // the path starts at the first slash (after method and host)
		if i < 0 {
			i = len(p)
		}
		lit := p[i:]
		if j := strings.IndexByte(lit, '{'); j >= 0 {
			lit = lit[:j]
		}
		e.prefixes = append(e.prefixes, lit)
	}
	return e
}

// match reports whether r is for an exempt route.
func (e exemption) match(r *http.Request) bool {
	if e.mayMatch(r) {
		_, pattern := e.mux.Handler(r)
		return pattern != ""
	}
	return false
}

// mayMatch is false only for requests no exempt pattern can match.
func (e exemption) mayMatch(r *http.Request) bool {
	path := r.URL.Path
	if r.Method == http.MethodConnect || path == "" || path[0] != '/' ||
		strings.Contains(path, "//") || strings.Contains(path, "/.") {
		return true // ServeMux cleans (and redirects) these: let it decide
	}
	for _, lit := range e.prefixes {
		if strings.HasPrefix(path, lit) || (len(lit) == len(path)+1 && strings.HasPrefix(lit, path) && lit[len(path)] == '/') {
			return true
		}
	}
	return false
}

// upgradeWriter releases a request's token when its handler hijacks the
// connection (a websocket upgrade, a CONNECT tunnel): from then on the
// connection lives as long as its peer wants, which is no request in
// flight. Counted, four websockets held an instance with a limit of 4
// full while it did nothing, and each one's lifetime became a latency
// sample when it closed. Only requests that ask for an upgrade get one,
// so the others allocate nothing more.
type upgradeWriter struct {
	http.ResponseWriter
	tok      Token
	released atomic.Bool // the handler may hijack on another goroutine
}

func (u *upgradeWriter) release() {
	if u.released.CompareAndSwap(false, true) {
		u.tok.Release()
	}
}

// Hijack hands the connection over and ends the request's turn in flight.
func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err == nil {
		u.release()
	}
	return c, rw, err
}

// Flush keeps http.Flusher working through the wrapper.
func (u *upgradeWriter) Flush() { _ = http.NewResponseController(u.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach deadlines and the rest.
func (u *upgradeWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }
