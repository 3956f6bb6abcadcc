// Package faults proves that a Warren mesh survives what breaks the mesh
// frameworks it is measured against: instances killed, hung, slow or
// restarted under load, the registry restarted, unreachable, compacted or
// fed garbage, and every registration coming back at once.
//
// Each scenario is a test (in *_test.go) that starts a real registry
// (embedded etcd or a Consul agent) and real service processes built from
// services/ (framework/devmesh), drives a bounded load through the
// generated typed client on 127.0.0.1, breaks something, and asserts the
// criterion its doc comment states. docs/faults.md lists them with their
// measured figures.
//
// This file and proxy.go are the reusable parts, shared with `make bench`:
// a fixed-rate load generator and a TCP proxy that can delay or cut.
package faults

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Call is one request of a load; it returns the request's error.
type Call func(ctx context.Context) error

// Load sends calls at a fixed rate for a bounded time. It is open loop: a
// slow answer does not delay the next call, so a hung instance shows up as
// latency and errors, not as fewer calls.
type Load struct {
	// Rate is calls per second (default 200).
	Rate int
	// Duration bounds the load (default 10 s); Run.Stop ends it sooner.
	Duration time.Duration
	// Timeout bounds each call (default 5 s).
	Timeout time.Duration
	// MaxInFlight bounds concurrent calls (default 1000); at the bound the
	// generator waits, so memory stays bounded if everything hangs.
	MaxInFlight int
}

// Sample is one call of a load.
type Sample struct {
	At      time.Duration // since the load started
	Latency time.Duration
	Err     error
}

// Result is every call of a finished load, in the order they were sent.
type Result struct {
	Samples []Sample
	Elapsed time.Duration
}

// Run is a load in progress.
type Run struct {
	start   time.Time
	stop    chan struct{}
	once    sync.Once
	done    chan struct{}
	result  Result
	samples []Sample
}

// Start begins the load in the background. The caller must Wait.
func (l Load) Start(ctx context.Context, call Call) *Run {
	if l.Rate <= 0 {
		l.Rate = 200
	}
	if l.Duration <= 0 {
		l.Duration = 10 * time.Second
	}
	if l.Timeout <= 0 {
		l.Timeout = 5 * time.Second
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = 1000
	}
	n := int(int64(l.Rate) * int64(l.Duration) / int64(time.Second))
	r := &Run{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), samples: make([]Sample, n)}
	go r.generate(ctx, l, n, call) // owned by the Run: ends after the last call
	return r
}

func (r *Run) generate(ctx context.Context, l Load, n int, call Call) {
	defer close(r.done)
	interval := time.Second / time.Duration(l.Rate)
	sem := make(chan struct{}, l.MaxInFlight)
	var wg sync.WaitGroup
	sent := 0
loop:
	for i := range n {
		if d := time.Until(r.start.Add(time.Duration(i) * interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.stop:
				t.Stop()
				break loop
			case <-ctx.Done():
				t.Stop()
				break loop
			}
		}
		select {
		case sem <- struct{}{}:
		case <-r.stop:
			break loop
		case <-ctx.Done():
			break loop
		}
		sent++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			at := time.Since(r.start)
			cctx, cancel := context.WithTimeout(ctx, l.Timeout)
			err := call(cctx)
			cancel()
			r.samples[i] = Sample{At: at, Latency: time.Since(r.start) - at, Err: err}
		}()
	}
	wg.Wait()
	r.result = Result{Samples: r.samples[:sent], Elapsed: time.Since(r.start)}
}

// Started is when the load began.
func (r *Run) Started() time.Time { return r.start }

// Stop ends the load early: no call is sent after it. Calls in flight
// finish; Wait returns once they have.
func (r *Run) Stop() { r.once.Do(func() { close(r.stop) }) }

// Wait waits for the load to end and returns every call.
func (r *Run) Wait() Result {
	<-r.done
	return r.result
}

// Total is the number of calls sent.
func (res Result) Total() int { return len(res.Samples) }

// Errors counts the calls that failed.
func (res Result) Errors() int {
	n := 0
	for _, s := range res.Samples {
		if s.Err != nil {
			n++
		}
	}
	return n
}

// ErrorsBetween counts failed calls sent in [from, to) after the start.
func (res Result) ErrorsBetween(from, to time.Duration) (errs, total int) {
	for _, s := range res.Samples {
		if s.At >= from && s.At < to {
			total++
			if s.Err != nil {
				errs++
			}
		}
	}
	return errs, total
}

// FirstErrors returns up to n distinct error messages, for a failure
// message.
func (res Result) FirstErrors(n int) []string {
	var out []string
	for _, s := range res.Samples {
		if s.Err != nil && !slices.Contains(out, s.Err.Error()) {
			out = append(out, fmt.Sprintf("at %s: %v", s.At.Round(time.Millisecond), s.Err))
			if len(out) == n {
				break
			}
		}
	}
	return out
}

// Percentile is the p-th percentile (0..100, nearest rank) of the
// latency of every call, failed ones included.
func (res Result) Percentile(p float64) time.Duration {
	if len(res.Samples) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(res.Samples))
	for i, s := range res.Samples {
		ls[i] = s.Latency
	}
	slices.Sort(ls)
	idx := int(float64(len(ls))*p/100+0.5) - 1
	return ls[max(0, min(idx, len(ls)-1))]
}

// String is the one-line summary the tests log.
func (res Result) String() string {
	return fmt.Sprintf("%d/%d errors, p50 %s, p99 %s, max %s", res.Errors(), res.Total(),
		res.Percentile(50).Round(10*time.Microsecond), res.Percentile(99).Round(10*time.Microsecond),
		res.Percentile(100).Round(10*time.Microsecond))
}
