package app

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The watchdog withdrew the instance while etcd was down: the delete
// failed, and the registrar let go of the instance all the same (its
// lease is revoked in the background, or expires). Stopped then, the
// withdraw phase's Deregister had nothing left to do and said err=none at
// info, and Run returned the release's failed revoke alone (exit 1), while
// the record stayed listed until its TTL: a failed withdrawal, which Run
// reports as ErrWithdraw (exit 3). The watchdog's failed withdrawal is
// now remembered until it registers the instance again; once it has,
// the stop is clean.
func TestRun_AWatchdogWithdrawalThatFailedIsAFailedWithdrawAtTheStop(t *testing.T) {
	for _, restored := range []bool{false, true} {
		name := "stopped while withdrawn"
		if restored {
			name = "registered again before the stop"
		}
		t.Run(name, func(t *testing.T) {
			srv, reg := etcdRegistry(t, 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			j := &journal{}
			out := &lines{}
			var failing atomic.Bool
			check := func(context.Context) error {
				if failing.Load() {
					return errors.New("dependency dead")
				}
				return nil
			}
			a, err := New("orders", okHandler(), reg, testOptions(j, WithLogger(tee{j, out}), WithWithdrawTimeout(time.Second),
				WithReadinessCheck("dep", check), WithWatchdog(100*time.Millisecond, 2))...)
			if err != nil {
				t.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			done := start(t, a, runCtx)
			if err := srv.Stop(); err != nil {
				t.Fatal(err)
			}
			failing.Store(true)
			waitLogged(t, out, "watchdog withdrew instance")
			if restored {
				if err := srv.Start(); err != nil {
					t.Fatal(err)
				}
				failing.Store(false)
				waitLogged(t, out, "watchdog restored instance")
			}
			stop()
			err = wait(t, done)
			switch {
			case restored && err != nil:
				t.Fatalf("Run = %v, want nil: the watchdog registered the instance again and the stop withdrew it", err)
			case !restored && !errors.Is(err, ErrWithdraw):
				t.Fatalf("Run = %v, want ErrWithdraw: the record the watchdog could not delete is still listed", err)
			case !restored && j.phaseLevel("withdraw") != "warn":
				t.Fatalf("withdraw line at level %q (err=%q), want warn", j.phaseLevel("withdraw"), j.phaseErr("withdraw"))
			}
			if restored {
				return
			}
			// What the error says: etcd back, the record is still there.
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			if etcdRecords(t, srv, "orders")() == 0 {
				t.Fatal("no record left once etcd was back: the premise of this test (a record the failed withdrawal left) does not hold")
			}
		})
	}
}

// waitLogged waits up to 30 s for a line containing sub.
func waitLogged(t *testing.T, out *lines, sub string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for out.count(sub) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q within 30s: %q", sub, out.all())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
