package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
)

// The service's checks run at most once per ReadinessCacheAge, and a
// watchdog asking more often than that was served the same run again:
// one failed run counted as several of the N consecutive failures, so at
// WithWatchdog(50ms, 3) a single failed check withdrew the instance
// (docs/lifecycle.md: it withdraws when the checks fail N times in a
// row). Each failure the watchdog counts is now a run of its own; N
// failed runs in a row still withdraw it. The checks run with the App's
// own cache here, as in a service.
func TestWatchdog_CountsEachRunOfTheChecksOnce(t *testing.T) {
	t.Run("one failed run", func(t *testing.T) {
		j := &journal{}
		reg := recorder{memory.New(), j}
		var runs atomic.Int32
		check := func(context.Context) error {
			if runs.Add(1) == 1 {
				return errors.New("one slow ping")
			}
			return nil
		}
		a, err := New("svc", okHandler(), reg, testOptions(j, WithReadinessCheck("dep", check), WithWatchdog(50*time.Millisecond, 3))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := start(t, a, ctx)
		defer func() { cancel(); wait(t, done) }()
		// Three runs: the failed one and two passing after it, each
		// watchdog tick in between served one of them.
		deadline := time.Now().Add(20 * time.Second)
		for runs.Load() < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%d runs of the check within 20s, want 3", runs.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if slices.Contains(j.list(), "registry:deregister") {
			t.Fatalf("one failed run of the check (of %d) withdrew the instance: %v", runs.Load(), j.list())
		}
	})
	t.Run("N failed runs", func(t *testing.T) {
		j := &journal{}
		reg := recorder{memory.New(), j}
		var runs atomic.Int32
		check := func(context.Context) error {
			j.add(fmt.Sprintf("check:%d:fail", runs.Add(1)))
			return errors.New("dependency dead")
		}
		a, err := New("svc", okHandler(), reg, testOptions(j, WithReadinessCheck("dep", check), WithWatchdog(50*time.Millisecond, 3))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := start(t, a, ctx)
		defer func() { cancel(); wait(t, done) }()
		deadline := time.Now().Add(20 * time.Second)
		for !slices.Contains(j.list(), "registry:deregister") {
			if time.Now().After(deadline) {
				t.Fatalf("not withdrawn within 20s of failing checks: %v", j.list())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if list := j.list(); indexOf(list, "check:3:fail") < 0 || indexOf(list, "check:3:fail") > indexOf(list, "registry:deregister") {
			t.Fatalf("journal %v: want the withdraw after the third failed run, not before", list)
		}
	})
}
