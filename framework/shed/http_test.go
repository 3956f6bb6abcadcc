package shed

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// held serves a handler that blocks until release is closed, so a test can
// keep the limiter full.
func held(t *testing.T, s testServer, path string) (release func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}()
	deadline := time.Now().Add(10 * time.Second)
	for s.l.Stats().InFlight < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the held request never got in flight")
		}
		time.Sleep(time.Millisecond)
	}
	var once atomic.Bool
	return func() {
		if once.CompareAndSwap(false, true) {
			close(s.hold)
			<-done
		}
	}
}

type testServer struct {
	l      *Limiter
	h      http.Handler
	served *atomic.Int64
	hold   chan struct{}
}

// fullServer returns a limiter with room for one request and a handler
// behind its middleware: /slow blocks until released, the rest answer 200.
func fullServer(t *testing.T, opts ...HTTPOption) testServer {
	t.Helper()
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1))
	mw, err := Middleware(l, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := testServer{l: l, served: new(atomic.Int64), hold: make(chan struct{})}
	s.h = mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.served.Add(1)
		if r.URL.Path == "/slow" {
			<-s.hold
		}
		w.WriteHeader(http.StatusOK)
	}))
	return s
}

func TestMiddleware_OverloadAnswerIs503WithRetryAfterAndCode(t *testing.T) {
	s := fullServer(t)
	l, h, served := s.l, s.h, s.served
	release := held(t, s, "/slow")
	defer release()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/users/1", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503", rec.Code)
	}
	if ra := rec.Header().Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1", ra)
	}
	var body struct{ Error, Code string }
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != Code || body.Error == "" {
		t.Fatalf("body %q (%v), want a JSON error with code %q", rec.Body.String(), err, Code)
	}
	if n := served.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1 (the held request only)", n)
	}
	if st := l.Stats(); st.ShedLimit != 1 {
		t.Fatalf("stats = %+v, want one shed by limit", st)
	}
}

func TestMiddleware_HealthAndReadinessNeverShed(t *testing.T) {
	s := fullServer(t)
	l, h := s.l, s.h
	release := held(t, s, "/slow")
	defer release()
	for _, path := range []string{"/healthz", "/readyz"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s on a full instance: status %d, want 200", path, rec.Code)
		}
	}
	if st := l.Stats(); st.ShedLimit != 0 || st.Admitted != 1 {
		t.Fatalf("stats = %+v: health probes must bypass the limiter", st)
	}
}

func TestMiddleware_ExemptRouteNeverShed(t *testing.T) {
	s := fullServer(t, WithExempt("POST /payments/{id}/capture"))
	h := s.h
	release := held(t, s, "/slow")
	defer release()

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/payments/42/capture", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("exempt route on a full instance: status %d, want 200", rec.Code)
	}
	// Same path, other method: not exempt.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/payments/42/capture", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET on a POST-only exemption: status %d, want 503", rec.Code)
	}
}

func TestMiddleware_AdmitsAgainOnceRoomIsMade(t *testing.T) {
	s := fullServer(t)
	l, h := s.l, s.h
	release := held(t, s, "/slow")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status = %d while full, want 503", rec.Code)
	}
	release()
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d after the held request finished, want 200", rec.Code)
	}
	if n := l.Stats().InFlight; n != 0 {
		t.Fatalf("in flight = %d after every request returned, want 0", n)
	}
}

func TestMiddleware_BadExemptPatternIsAnError(t *testing.T) {
	l := mustNew(t, WithQueueProbe(nil))
	for _, p := range []string{"GET /a/{", "GET /healthz"} {
		_, err := Middleware(l, WithExempt(p, p))
		if p == "GET /healthz" {
			if err != nil {
				t.Fatalf("a duplicate of a default exemption: %v, want it accepted", err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("pattern %q accepted, want an error", p)
		}
	}
}

func TestMiddleware_RetryAfterGrowsWithTheShareShed(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1), WithClock(clk.Now))
	mw, err := Middleware(l, WithRetryAfter(time.Second, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	held, _ := l.Acquire() // the instance is full from here on
	defer held.Release()
	var first, last string
	for i := range 100 {
		clk.Add(10 * time.Millisecond)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("status %d while full, want 503", rec.Code)
		}
		if i == 0 {
			first = rec.Header().Get("Retry-After")
		}
		last = rec.Header().Get("Retry-After")
	}
	if first != "1" || last != "5" {
		t.Fatalf("Retry-After went %s → %s while every request was shed, want 1 → 5", first, last)
	}
	if r := l.Stats().ShedRatio; r < 0.9 {
		t.Fatalf("shed ratio %v with every request shed, want near 1", r)
	}
}

// The shedder's admission of a request to a route that is not exempt
// allocates only the request's record of its waits on other services (its
// context, and the request carrying it: 2): the exempt routes are told
// apart without asking a ServeMux, which allocates on every request it
// finds no route for.
func TestMiddleware_AdmissionAllocatesNothing(t *testing.T) {
	l := mustNew(t, WithQueueProbe(nil))
	mw, err := Middleware(l, WithExempt("POST /payments/{id}/capture", "GET /admin/"))
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	rec, req := httptest.NewRecorder(), httptest.NewRequest("GET", "/users/42", nil)
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(rec, req) }); n > 2 {
		t.Fatalf("%v allocations per admitted request, want at most 2 (the downstream record)", n)
	}
	if st := l.Stats(); st.Admitted == 0 {
		t.Fatalf("stats %+v: the requests did not go through the limiter", st)
	}
}

// Telling exempt routes apart before the ServeMux changes nothing about
// which requests are exempt: every request here is exempt exactly when
// the ServeMux of the patterns finds a pattern for it (redirects to a
// trailing slash and to a cleaned path included).
func TestExemption_AgreesWithServeMux(t *testing.T) {
	patterns := append(append([]string(nil), DefaultExempt...),
		"POST /payments/{id}/capture", "GET /admin/", "example.com/host-only", "/exact/{$}", "GET /files/{path...}")
	mux, err := exemptMux(patterns)
	if err != nil {
		t.Fatal(err)
	}
	e := newExemption(mux, patterns)
	exempt := 0
	for _, tc := range []struct{ method, target string }{
		{"GET", "/healthz"}, {"HEAD", "/healthz"}, {"POST", "/healthz"}, {"GET", "/healthz/"},
		{"GET", "/readyz"}, {"GET", "/ready"}, {"GET", "/x/../healthz"}, {"GET", "//healthz"},
		{"GET", "/./readyz"}, {"GET", "/health%7A"}, {"GET", "/users/1"}, {"GET", "/"},
		{"POST", "/payments/42/capture"}, {"GET", "/payments/42/capture"}, {"POST", "/payments/4%2F2/capture"},
		{"POST", "/payments"}, {"POST", "/payments/"}, {"GET", "/admin"}, {"GET", "/admin/"},
		{"GET", "/admin/users"}, {"GET", "/adminx"}, {"GET", "http://example.com/host-only"},
		{"GET", "http://other.example/host-only"}, {"GET", "/exact/"}, {"GET", "/exact"},
		{"GET", "/exact/more"}, {"GET", "/files/a/b"}, {"GET", "/files"}, {"OPTIONS", "*"},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		_, pattern := mux.Handler(r)
		if got, want := e.match(r), pattern != ""; got != want {
			t.Errorf("%s %s: exempt %v, ServeMux says %v (pattern %q)", tc.method, tc.target, got, want, pattern)
		}
		if pattern != "" {
			exempt++
		}
	}
	if exempt < 10 {
		t.Fatalf("only %d of the requests exempt: the table no longer tests both sides", exempt)
	}
}

// With the default range, Retry-After grows from 1 s to 5 s as the
// share shed grows.
func TestMiddleware_DefaultRetryAfterIsOneToFiveSeconds(t *testing.T) {
	clk := newFakeClock()
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1), WithClock(clk.Now))
	mw, err := Middleware(l)
	if err != nil {
		t.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	held, _ := l.Acquire()
	defer held.Release()
	var first, last string
	for i := range 100 {
		clk.Add(10 * time.Millisecond)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if i == 0 {
			first = rec.Header().Get("Retry-After")
		}
		last = rec.Header().Get("Retry-After")
	}
	if first != "1" || last != "5" {
		t.Fatalf("Retry-After went %s → %s on defaults, want 1 → 5", first, last)
	}
}

// A request whose caller has gone is dropped unanswered: its handler
// does not run, and it is neither admitted nor refused.
func TestMiddleware_CallerGoneIsDroppedUnanswered(t *testing.T) {
	s := fullServer(t)
	release := held(t, s, "/slow")
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil).WithContext(ctx))
	if rec.Body.Len() != 0 || rec.Header().Get("Retry-After") != "" {
		t.Fatalf("answered %d %q to a caller that had gone, want nothing", rec.Code, rec.Body.String())
	}
	if st := s.l.Stats(); st.ShedLimit != 0 || st.Admitted != 1 || s.served.Load() != 1 {
		t.Fatalf("stats %+v, served %d; want the gone caller neither refused nor served", st, s.served.Load())
	}
}
