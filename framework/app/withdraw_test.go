package app

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// With etcd gone at the stop, the withdraw fails and the record stays
// until its lease expires: Run returns ErrWithdraw and the exit line says
// it, where it said err=none and returned nil (report j53a F2).
func TestShutdown_FailedWithdrawIsWhatRunReturns(t *testing.T) {
	srv, reg := etcdRegistry(t, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	j := &journal{}
	a, err := New("orders", okHandler(), reg, testOptions(j, WithWithdrawTimeout(time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := start(t, a, runCtx)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stop()
	err = wait(t, done)
	if !errors.Is(err, ErrWithdraw) || !strings.Contains(err.Error(), a.Instance().ID) {
		t.Fatalf("Run = %v, want ErrWithdraw naming the instance", err)
	}
	if got := j.phaseErr("exit"); got != err.Error() {
		t.Fatalf("exit line err=%q, want Run's error %q", got, err)
	}
	// A failed exit is not logged as routine (re-test r55a).
	if got := j.phaseLevel("exit"); got != "warn" {
		t.Fatalf("exit line logged at level %q, want warn", got)
	}
	// The lease the withdraw could not revoke is still alive: the release
	// line says so, where it read err=none (task H1); the exit still
	// counts as a failed withdraw.
	if got := j.phaseErr("release"); !strings.Contains(got, "etcd: revoke lease ") {
		t.Fatalf("release line err=%q, want the failed revoke (etcd: revoke lease …)", got)
	}
	if got := j.phaseLevel("release"); got != "warn" {
		t.Fatalf("release line logged at level %q, want warn", got)
	}
	if !strings.HasPrefix(err.Error(), ErrWithdraw.Error()) {
		t.Fatalf("Run = %q, want the failed withdraw first, the release's failure after it", err)
	}
}
