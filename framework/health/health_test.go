package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
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
