package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHandler_AllPassIs200WithDetail(t *testing.T) {
	s := NewSet(time.Second)
	s.Add("db", func(context.Context) error { return nil })
	rec := httptest.NewRecorder()
	Handler(s, func(http.Header) map[string]any { return map[string]any{"service": "x"} }).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	var body struct {
		Status  string            `json:"status"`
		Service string            `json:"service"`
		Checks  map[string]Result `json:"checks"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body.Status != "ok" || body.Service != "x" || !body.Checks["db"].OK {
		t.Fatalf("body %s", rec.Body)
	}
}

func TestHandler_OneFailureIs503NamingIt(t *testing.T) {
	s := NewSet(time.Second)
	s.Add("ok", func(context.Context) error { return nil })
	s.Add("db", func(context.Context) error { return errors.New("connection refused") })
	rec := httptest.NewRecorder()
	Handler(s, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 {
		t.Fatalf("status %d", rec.Code)
	}
	rep := s.Run(context.Background())
	if got := rep.Failed(); len(got) != 1 || got[0] != "db" || rep.Checks["db"].Detail != "connection refused" {
		t.Fatalf("report %+v", rep)
	}
}

func TestRun_HungAndPanickingChecksFailWithoutBlocking(t *testing.T) {
	s := NewSet(50 * time.Millisecond)
	block := make(chan struct{})
	defer close(block)
	s.Add("ignores-ctx", func(context.Context) error { <-block; return nil })
	s.Add("honours-ctx", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	s.Add("panics", func(context.Context) error { panic("boom") })
	start := time.Now()
	rep := s.Run(context.Background())
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Run took %s", took)
	}
	if rep.OK() || len(rep.Failed()) != 3 {
		t.Fatalf("report %+v", rep)
	}
}

// A check that ignores its context is run once until it returns: the runs
// meanwhile report it hung instead of starting one more goroutine each,
// and the first run after it returned runs it again.
func TestRun_HungCheckIsNotStartedAgainUntilItReturns(t *testing.T) {
	release := make(chan struct{})
	var starts atomic.Int32
	s := NewSet(200 * time.Millisecond)
	s.Add("db", func(context.Context) error {
		starts.Add(1)
		<-release
		return nil
	})
	s.Add("ok", func(context.Context) error { return nil })
	var details []string
	for i := range 5 {
		rep := s.Run(context.Background())
		if rep.OK() || !rep.Checks["ok"].OK {
			t.Fatalf("run %d: %+v, want only db failing", i, rep)
		}
		details = append(details, rep.Checks["db"].Detail)
	}
	close(release)
	if n := starts.Load(); n != 1 {
		t.Fatalf("the hung check was started %d times in 5 runs, want once", n)
	}
	for i, d := range details {
		if !strings.Contains(d, "timed out after 200ms") || (i > 0 && !strings.Contains(d, "still running")) {
			t.Fatalf("run %d: db detail %q", i, d)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if s.Run(context.Background()).OK() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the check returned but is still reported hung after 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Runs at the same time that are not hung each run the check: none is
// handed another's result, so a report never predates its Run (a
// withdrawal shows on /readyz at once).
func TestRun_ConcurrentRunsEachRunTheCheck(t *testing.T) {
	both := make(chan struct{})
	var in atomic.Int32
	s := NewSet(10 * time.Second)
	s.Add("db", func(ctx context.Context) error {
		if in.Add(1) == 2 {
			close(both)
		}
		select { // returns once both runs are inside it
		case <-both:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	reps := make(chan Report, 2)
	for range 2 {
		go func() { reps <- s.Run(context.Background()) }()
	}
	for range 2 {
		if rep := <-reps; !rep.OK() {
			t.Fatalf("report %+v, want ok", rep)
		}
	}
}

// ?exclude=NAME leaves a check out of the status (kube-apiserver's form):
// a probe that must not follow the registry still sees the other checks;
// an unknown name is a 400, not a silent "no exclusion".
func TestHandler_ExcludeLeavesACheckOutOfTheStatus(t *testing.T) {
	s := NewSet(time.Second)
	s.Add("draining", func(context.Context) error { return nil })
	s.Add("registered", func(context.Context) error { return errors.New("retrying: etcd unreachable") })
	get := func(url string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		Handler(s, nil).ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
		return rec
	}
	if rec := get("/readyz"); rec.Code != 503 {
		t.Fatalf("/readyz: %d, want 503 with the registration failing", rec.Code)
	}
	rec := get("/readyz?exclude=registered")
	var body struct {
		Status   string            `json:"status"`
		Checks   map[string]Result `json:"checks"`
		Excluded []string          `json:"excluded"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || body.Status != "ok" || body.Checks["registered"].OK || len(body.Excluded) != 1 {
		t.Fatalf("/readyz?exclude=registered: %d %s; want 200, the failing check still shown, listed as excluded", rec.Code, rec.Body)
	}
	s.Add("draining", func(context.Context) error { return errors.New("draining") })
	if rec := get("/readyz?exclude=registered"); rec.Code != 503 {
		t.Fatalf("draining, registered excluded: %d, want 503 (only the named check is left out)", rec.Code)
	}
	rec = get("/readyz?exclude=registred")
	var e struct{ Error, Code string }
	if rec.Code != 400 || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Code != CodeUnknownCheck ||
		!strings.Contains(e.Error, `"registred"`) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("a misspelt exclusion: %d %q %s; want 400, a JSON error naming it with code %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body, CodeUnknownCheck)
	}
}
