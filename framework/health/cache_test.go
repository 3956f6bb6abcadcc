package health

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// NewSet(0) bounds each check by DefaultTimeout, not by 0: the check
// sees a deadline about DefaultTimeout away.
func TestNewSet_ZeroTimeoutMeansDefault(t *testing.T) {
	var left atomic.Int64
	s := NewSet(0)
	s.Add("db", func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		left.Store(int64(time.Until(d)))
		return nil
	})
	if rep := s.Run(context.Background()); !rep.OK() {
		t.Fatalf("report %+v", rep)
	}
	// The upper bound is exact; the lower one allows a slow machine a
	// second between the deadline being set and the check reading it.
	if l := time.Duration(left.Load()); l > DefaultTimeout || l < DefaultTimeout-time.Second {
		t.Fatalf("the check had %s left, want about %s", l, DefaultTimeout)
	}
}

// CacheFor serves the last report while it is fresh: a second Run within
// the hour does not run the check again.
func TestCacheFor_ServesTheLastReportWhileFresh(t *testing.T) {
	var runs atomic.Int32
	s := NewSet(time.Second, CacheFor(time.Hour))
	s.Add("db", func(context.Context) error { runs.Add(1); return nil })
	for i := range 3 {
		if rep := s.Run(context.Background()); !rep.OK() {
			t.Fatalf("run %d: %+v", i, rep)
		}
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the check ran %d times in 3 Runs within CacheFor, want once", n)
	}
}

// With CacheFor, a Run while another is running the checks waits for that
// run instead of starting its own; a waiter whose context ends gives up
// with a failed report rather than running the checks itself.
func TestCacheFor_ConcurrentRunsShareOneRun(t *testing.T) {
	var runs atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	s := NewSet(30*time.Second, CacheFor(time.Hour))
	s.Add("db", func(context.Context) error {
		if runs.Add(1) == 1 {
			close(entered)
			<-release // the first run holds until the waiter has answered
		}
		return nil
	})
	first := make(chan Report, 1)
	go func() { first <- s.Run(context.Background()) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first run never started the check")
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	waiter := make(chan Report, 1)
	go func() { waiter <- s.Run(gone) }()
	var rep Report
	select {
	case rep = <-waiter:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a Run with an ended context did not return while another run was in progress")
	}
	close(release)
	if rep.OK() || !strings.Contains(rep.Checks["checks"].Detail, "gave up waiting") {
		t.Errorf("waiter's report %+v; want it to have given up waiting for the shared run", rep)
	}
	select {
	case r := <-first:
		if !r.OK() {
			t.Errorf("first run: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the first run did not return")
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("the check ran %d times, want once (shared)", n)
	}
}

// An included set's failing check fails the including set's report, and
// so its /readyz.
func TestInclude_FailingIncludedCheckFailsTheReport(t *testing.T) {
	own := NewSet(time.Second)
	own.Add("db", func(context.Context) error { return errors.New("down") })
	s := NewSet(time.Second)
	s.Add("draining", func(context.Context) error { return nil })
	s.Include(own)
	rep := s.Run(context.Background())
	if rep.OK() || len(rep.Failed()) != 1 || rep.Failed()[0] != "db" {
		t.Fatalf("report %+v; want failed on the included db check", rep)
	}
	rec := httptest.NewRecorder()
	Handler(s, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("/readyz: %d, Cache-Control %q; want 503, no-store (a cached probe answer would hide a change)", rec.Code, rec.Header().Get("Cache-Control"))
	}
}
