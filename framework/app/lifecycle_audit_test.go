package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// TestNew_DefaultsAreTheDocumentedOnes pins every default docs/lifecycle.md
// states (the Options table, the watchdog, signals and readiness sections),
// as New applies them: a changed constant, or one no longer wired into the
// options, changes what every service does on shutdown.
func TestNew_DefaultsAreTheDocumentedOnes(t *testing.T) {
	o, err := newOptions(nil)
	if err != nil {
		t.Fatal(err)
	}
	durations := []struct {
		name      string
		got, want time.Duration
	}{
		{"grace (WithGracePeriod)", o.grace, 2 * time.Second},
		{"drain timeout (WithDrainTimeout)", o.drain, 15 * time.Second},
		{"self-check timeout (WithSelfCheckTimeout)", o.selfCheckTimeout, 5 * time.Second},
		{"withdraw timeout (WithWithdrawTimeout)", o.withdrawTimeout, 5 * time.Second},
		{"first registration timeout (WithRegisterTimeout: none)", o.registerTimeout, 0},
		{"watchdog interval (WithWatchdog)", o.watchdogInterval, 5 * time.Second},
		{"release timeout", o.releaseTimeout, 5 * time.Second},
		{"HTTP header read timeout (WithHTTPTimeouts)", o.readHeader, 5 * time.Second},
		{"HTTP idle timeout (WithHTTPTimeouts)", o.idle, 120 * time.Second},
		{"watchdog re-registration bound", DefaultRegisterTimeout, 15 * time.Second},
		{"readiness cache age", ReadinessCacheAge, time.Second},
		{"repeated signal window", repeatWindow, time.Second},
	}
	for _, d := range durations {
		if d.got != d.want {
			t.Errorf("default %s = %s, docs/lifecycle.md says %s", d.name, d.got, d.want)
		}
	}
	if o.watchdogFailures != 3 {
		t.Errorf("default watchdog failures = %d, docs say 3", o.watchdogFailures)
	}
	if !o.selfCheck || !o.signals {
		t.Errorf("self-check on = %v, signals on = %v; both are on by default", o.selfCheck, o.signals)
	}
	if o.listen != ":8080" {
		t.Errorf("default listen = %q, docs say :8080", o.listen)
	}
}

// hungCloser never returns from Close until the test ends.
type hungCloser struct{ release <-chan struct{} }

func (h hungCloser) Close() error { <-h.release; return nil }

// TestShutdown_AHungCloserCannotHoldTheExit: phase 9 gives the closers and
// the registry DefaultReleaseTimeout (5 s) in all; past it Run returns,
// saying so, instead of hanging the process's exit on a stuck backend.
func TestShutdown_AHungCloserCannotHoldTheExit(t *testing.T) {
	release := make(chan struct{})
	defer close(release) // lets the abandoned Close goroutine end
	j := &journal{}
	a, err := New("hung", okHandler(), memory.New(), testOptions(j, WithCloser(hungCloser{release}))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	<-a.Ready()
	began := time.Now()
	cancel()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s with a closer that never returns: the release phase is unbounded")
	}
	if err == nil || !strings.Contains(err.Error(), "did not return within 5s") {
		t.Fatalf("Run = %v, want the release phase's bound (5s) named", err)
	}
	if took := time.Since(began); took < 5*time.Second {
		t.Errorf("Run returned after %s, before the 5s release bound", took)
	}
	if errors.Is(err, ErrWithdraw) {
		t.Errorf("Run = %v: the withdraw did not fail", err)
	}
}

// A withdraw that failed is what Run returns even when everything after it
// went well (the release included), so the exit status says the record
// may stay listed (bootstrap exits ExitWithdrawFailed on it); the exit
// line is a warning.
func TestShutdown_FailedWithdrawAloneIsWhatRunReturns(t *testing.T) {
	j := &journal{}
	a, err := New("orders", okHandler(), failingDeregister{memory.New()}, testOptions(j)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	err = wait(t, done)
	if !errors.Is(err, ErrWithdraw) || !strings.Contains(err.Error(), "servers unreachable") {
		t.Fatalf("Run = %v, want ErrWithdraw with the registry's reason", err)
	}
	if got := j.phaseErr("release"); got != "none" {
		t.Fatalf("release line err=%q, want none: this withdraw fails alone", got)
	}
	if got := j.phaseLevel("exit"); got != "warn" {
		t.Fatalf("exit line at level %q, want warn", got)
	}
}

// Phase 9 closes the service's closers newest first, then the registry,
// all after the drain: a client added after another may use it.
func TestShutdown_ReleaseClosesNewestCloserFirstThenTheRegistry(t *testing.T) {
	j := &journal{}
	reg := recorder{memory.New(), j}
	a, err := New("orders", okHandler(), reg, testOptions(j, WithCloser(closeRecorder{j, "first"}), WithCloser(closeRecorder{j, "second"}))...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	cancel()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	list := j.list()
	drain, second, first, closed := indexOf(list, "phase:drain"), indexOf(list, "closed:second"), indexOf(list, "closed:first"), indexOf(list, "registry:close")
	if drain < 0 || !(drain < second && second < first && first < closed) {
		t.Fatalf("journal %v: want the drain, then closed:second, closed:first, registry:close", list)
	}
}

// The watchdog withdraws after exactly N consecutive failures of the
// service's own checks: N-1 failures and a pass leave the instance listed,
// and the count starts again. The checks are run uncached here, so each
// watchdog tick is one run and the journal orders runs and registry calls
// without depending on timing.
func TestWatchdog_WithdrawsAfterExactlyNConsecutiveFailures(t *testing.T) {
	j := &journal{}
	reg := recorder{memory.New(), j}
	var runs atomic.Int32
	check := func(context.Context) error {
		n := runs.Add(1)
		if n > 8 {
			return nil // passing again: restored
		}
		// runs 1-2 fail, 3 passes, 4-6 fail: the withdraw comes after run 6
		if fail := n <= 2 || n >= 4 && n <= 6; fail {
			j.add(fmt.Sprintf("check:%d:fail", n))
			return errors.New("dependency dead")
		}
		j.add(fmt.Sprintf("check:%d:pass", n))
		return nil
	}
	a, err := New("svc", okHandler(), reg, testOptions(j, WithReadinessCheck("dep", check), WithWatchdog(20*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	a.own, a.ownCacheAge = health.NewSet(0), 0 // uncached: one run per watchdog tick
	a.own.Add("dep", check)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	waitFor(t, "withdrawn and registered again", func() bool {
		return slices.Contains(j.list(), "registry:deregister") && runs.Load() > 8 && len(reg.Instances("svc")) == 1
	})
	list := j.list()
	dereg, sixth := indexOf(list, "registry:deregister"), indexOf(list, "check:6:fail")
	if sixth < 0 || dereg != sixth+1 {
		t.Fatalf("journal %v: want the one withdraw right after the third consecutive failure (run 6), none after runs 1-2", list)
	}
}

// registerDeadlines is a memory registry that notes how far ahead the
// deadline of each Register's context was (-1: none).
type registerDeadlines struct {
	*memory.Registry
	mu    *sync.Mutex
	ahead *[]time.Duration
}

func (r registerDeadlines) Register(ctx context.Context, i registry.Instance) error {
	ahead := time.Duration(-1)
	if dl, ok := ctx.Deadline(); ok {
		ahead = time.Until(dl)
	}
	r.mu.Lock()
	*r.ahead = append(*r.ahead, ahead)
	r.mu.Unlock()
	return r.Registry.Register(ctx, i)
}

// The first registration waits for the registry as long as it takes, but
// each registration the watchdog makes again is bounded, by
// DefaultRegisterTimeout (15 s, docs/lifecycle.md), so a hung registry
// cannot stall the watchdog for good.
func TestWatchdog_RegistersAgainWithinTheDocumentedBound(t *testing.T) {
	var mu sync.Mutex
	var ahead []time.Duration
	reg := registerDeadlines{memory.New(), &mu, &ahead}
	var runs atomic.Int32
	check := func(context.Context) error {
		if runs.Add(1) <= 3 {
			return errors.New("dependency dead")
		}
		return nil
	}
	a, err := New("svc", okHandler(), reg, testOptions(&journal{}, WithReadinessCheck("dep", check), WithWatchdog(20*time.Millisecond, 3))...)
	if err != nil {
		t.Fatal(err)
	}
	a.own, a.ownCacheAge = health.NewSet(0), 0 // uncached: one run per watchdog tick
	a.own.Add("dep", check)
	ctx, cancel := context.WithCancel(context.Background())
	done := start(t, a, ctx)
	defer func() { cancel(); wait(t, done) }()
	waitFor(t, "registered again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ahead) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if ahead[0] != -1 {
		t.Errorf("first registration had a deadline %s ahead, want none by default", ahead[0])
	}
	// 10 s of slack for a machine that stalls between setting the deadline
	// and the call.
	if ahead[1] <= 5*time.Second || ahead[1] > 15*time.Second {
		t.Errorf("the watchdog's registration had a deadline %s ahead, want within (5s, 15s]", ahead[1])
	}
}
