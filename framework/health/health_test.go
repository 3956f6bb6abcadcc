package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
