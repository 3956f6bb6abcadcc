// Package health runs named checks and serves their results as JSON, the
// way load balancers and orchestrators probe a service: 200 when every
// check passes, 503 with per-check detail when one fails.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Check reports a problem as an error; nil means healthy. It must honour
// ctx: a check that outlives its timeout is reported as failed.
type Check func(ctx context.Context) error

// Result is one check's outcome.
type Result struct {
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
	TookMS int64  `json:"took_ms"`
}

// Report is the body of a health response.
type Report struct {
	Status string            `json:"status"` // "ok" or "fail"
	Checks map[string]Result `json:"checks"`
}

// OK reports whether every check passed.
func (r Report) OK() bool { return r.Status == "ok" }

// Excluding returns r with the named checks left out of its status: they
// stay in Checks, as they were, but only the others decide Status. It is
// what a probe that must not follow some checks sees (Handler's
// ?exclude=, gRPC health's default names). A name r has no check for
// changes nothing; r is not modified.
func (r Report) Excluding(names ...string) Report {
	if len(names) == 0 {
		return r
	}
	out := Report{Status: "ok", Checks: r.Checks}
	for n, c := range r.Checks {
		if !c.OK && !slices.Contains(names, n) {
			out.Status = "fail"
		}
	}
	return out
}

// Failed returns the names of the failed checks, sorted.
func (r Report) Failed() []string {
	var out []string
	for n, c := range r.Checks {
		if !c.OK {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// DefaultTimeout bounds each check when the Set sets none.
const DefaultTimeout = 2 * time.Second

// Set is a named collection of checks, safe for concurrent use.
type Set struct {
	timeout time.Duration
	maxAge  time.Duration
	mu      sync.RWMutex
	checks  map[string]*entry
	include []*Set

	cmu     sync.Mutex
	last    Report
	lastAt  time.Time
	running chan struct{} // closed when the shared run in progress ends
}

// entry is one registered check and the runs of it that outlived the
// set's timeout and have not returned (they ignored their context). While
// there is one, the check is not run again: a check stuck on a lock or a
// driver without deadlines would otherwise hold one more goroutine per run
// (one a second for an App's own checks) for as long as it stays stuck.
type entry struct {
	check Check

	mu    sync.Mutex
	hung  int       // runs abandoned at the timeout that have not returned
	since time.Time // when the oldest of them started (as far as known)
}

// checkRun is one run of an entry, in its own goroutine.
type checkRun struct {
	start     time.Time
	done      bool // its result is sent; under the entry's mu
	abandoned bool // reported as timed out before it returned; under mu
}

// SetOption configures a Set.
type SetOption func(*Set)

// CacheFor makes Run serve the last report while it is younger than d, and
// makes concurrent Runs share one run of the checks: a burst of probes, the
// watchdog and a registry heartbeat together cost one run per d, not one
// run (and one goroutine per check) each.
func CacheFor(d time.Duration) SetOption { return func(s *Set) { s.maxAge = d } }

// NewSet returns an empty set whose checks each get at most timeout
// (DefaultTimeout when ≤ 0).
func NewSet(timeout time.Duration, opts ...SetOption) *Set {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s := &Set{timeout: timeout, checks: map[string]*entry{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Include adds o's checks to s's reports. o runs them (from its cache, when
// it has one), so a set of cheap live checks can include a cached set of
// expensive ones.
func (s *Set) Include(o *Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.include = append(s.include, o)
}

// Add registers (or replaces) a check.
func (s *Set) Add(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = &entry{check: c}
}

// Names returns the registered check names (included sets' too), sorted.
func (s *Set) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.checks))
	for n := range s.checks {
		out = append(out, n)
	}
	for _, o := range s.include {
		out = append(out, o.Names()...)
	}
	slices.Sort(out)
	return out
}

// Run runs every check concurrently, each bounded by the set's timeout, and
// merges in the reports of included sets. With CacheFor it serves the last
// report while fresh. The report's Checks map is the caller's.
//
// A check that ignores its context is reported as timed out after the
// timeout and left running; until that run returns, the check is not run
// again (its goroutines would pile up) and every report says it is still
// hung.
func (s *Set) Run(ctx context.Context) Report {
	if s.maxAge <= 0 {
		return s.runAll(ctx)
	}
	s.cmu.Lock()
	if !s.lastAt.IsZero() && time.Since(s.lastAt) < s.maxAge {
		rep := s.last.clone()
		s.cmu.Unlock()
		return rep
	}
	if ch := s.running; ch != nil { // someone is running them: share it
		s.cmu.Unlock()
		select {
		case <-ch:
			s.cmu.Lock()
			defer s.cmu.Unlock()
			return s.last.clone()
		case <-ctx.Done():
			return Report{Status: "fail", Checks: map[string]Result{"checks": {Detail: "gave up waiting: " + ctx.Err().Error()}}}
		}
	}
	ch := make(chan struct{})
	s.running = ch
	s.cmu.Unlock()
	// Shared by every waiter, so not cut short by this caller's context;
	// each check is still bounded by the set's timeout.
	rep := s.runAll(context.WithoutCancel(ctx))
	s.cmu.Lock()
	s.last, s.lastAt, s.running = rep, time.Now(), nil
	close(ch)
	s.cmu.Unlock()
	return rep.clone()
}

func (r Report) clone() Report {
	r.Checks = maps.Clone(r.Checks)
	return r
}

func (s *Set) runAll(ctx context.Context) Report {
	s.mu.RLock()
	include := slices.Clone(s.include)
	s.mu.RUnlock()
	rep := s.run(ctx)
	for _, o := range include {
		for n, r := range o.Run(ctx).Checks {
			rep.Checks[n] = r
			if !r.OK {
				rep.Status = "fail"
			}
		}
	}
	return rep
}

// run runs the set's own checks.
func (s *Set) run(ctx context.Context) Report {
	s.mu.RLock()
	checks := make(map[string]*entry, len(s.checks))
	for n, e := range s.checks {
		checks[n] = e
	}
	s.mu.RUnlock()

	type named struct {
		name string
		res  Result
	}
	rep := Report{Status: "ok", Checks: make(map[string]Result, len(checks))}
	runs := make(map[string]*checkRun, len(checks))
	out := make(chan named, len(checks)) // buffered: a check that overruns never blocks
	for n, e := range checks {
		e.mu.Lock()
		if e.hung > 0 {
			// Its last run outlived the timeout and is still running:
			// report that rather than start another beside it.
			since := time.Since(e.since)
			e.mu.Unlock()
			rep.Checks[n] = Result{Detail: fmt.Sprintf("timed out after %s, and still running %s after it started: not run again until it returns",
				s.timeout, since.Round(time.Millisecond)), TookMS: since.Milliseconds()}
			continue
		}
		e.mu.Unlock()
		r := &checkRun{start: time.Now()}
		runs[n] = r
		go func() {
			cctx, cancel := context.WithTimeout(ctx, s.timeout)
			defer cancel()
			err := runCheck(cctx, e.check)
			res := Result{OK: err == nil, TookMS: time.Since(r.start).Milliseconds()}
			if err != nil {
				res.Detail = err.Error()
			}
			e.mu.Lock()
			if r.abandoned {
				e.hung--
				e.mu.Unlock()
				return
			}
			r.done = true
			e.mu.Unlock()
			out <- named{n, res}
		}()
	}
	deadline := time.NewTimer(s.timeout + 100*time.Millisecond)
	defer deadline.Stop()
	for pending := len(runs); pending > 0; pending-- {
		select {
		case r := <-out:
			rep.Checks[r.name] = r.res
		case <-deadline.C:
			// A check ignored its context; report it instead of waiting,
			// and mark it hung so the next runs do not start it again.
			for n, r := range runs {
				if _, done := rep.Checks[n]; done {
					continue
				}
				e := checks[n]
				e.mu.Lock()
				if r.done { // returned just now: its result is on its way
					e.mu.Unlock()
					continue
				}
				r.abandoned = true
				if e.hung++; e.hung == 1 {
					e.since = r.start
				}
				e.mu.Unlock()
				rep.Checks[n] = Result{Detail: fmt.Sprintf("timed out after %s", s.timeout), TookMS: s.timeout.Milliseconds()}
				pending--
			}
			for ; pending > 0; pending-- {
				r := <-out
				rep.Checks[r.name] = r.res
			}
			goto done
		}
	}
done:
	for _, r := range rep.Checks {
		if !r.OK {
			rep.Status = "fail"
		}
	}
	return rep
}

// runCheck turns a panicking check into a failure.
func runCheck(ctx context.Context, c Check) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	if err := c(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return fmt.Errorf("timed out: %w", err)
		}
		return err
	}
	return nil
}

// CodeUnknownCheck is the code of the 400 that answers ?exclude= naming a
// check the set does not have.
const CodeUnknownCheck = "unknown_check"

// errorBody is Warren's error body (httptransport.ErrorBody), written here
// without importing the transport.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Handler serves the set: 200 with the report when every check passes,
// 503 otherwise. extra, if non-nil, adds fields (service, version) to the
// body; it is called per request.
//
// ?exclude=NAME (repeatable, as kube-apiserver's /readyz takes it) leaves
// a check out of the status: a probe that must not follow it — a load
// balancer or a kubelet in front of a service registered in etcd, Consul
// or ZooKeeper, which should not take every instance out when the registry
// is down (exclude=registered) — still sees the others, draining
// included. The excluded checks are listed under "excluded"; a name the
// set does not have is a 400 (JSON {"error":…,"code":"unknown_check"}),
// so a typo does not pass for an exclusion.
func Handler(s *Set, extra func(http.Header) map[string]any) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		excluded := r.URL.Query()["exclude"]
		if len(excluded) > 0 {
			names := s.Names()
			for _, n := range excluded {
				if !slices.Contains(names, n) {
					// JSON like every other error Warren answers
					// ({"error","code"}, docs/http.md), so a probe or
					// script reads one format whatever refused it.
					w.Header().Set("Content-Type", "application/json; charset=utf-8")
					w.Header().Set("X-Content-Type-Options", "nosniff")
					w.Header().Set("Cache-Control", "no-store")
					w.WriteHeader(http.StatusBadRequest)
					_ = json.NewEncoder(w).Encode(errorBody{
						Error: fmt.Sprintf("exclude=%q: no such check (have: %s)", n, strings.Join(names, ", ")),
						Code:  CodeUnknownCheck,
					})
					return
				}
			}
		}
		rep := s.Run(r.Context()).Excluding(excluded...)
		body := map[string]any{"status": rep.Status, "checks": rep.Checks}
		if len(excluded) > 0 {
			body["excluded"] = excluded
		}
		if extra != nil {
			for k, v := range extra(w.Header()) {
				body[k] = v
			}
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.OK() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(body)
	})
}
