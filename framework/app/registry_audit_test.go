package app

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The registration lost during the shutdown and the registry back during
// the grace: the withdraw failed (etcd down at the stop), and nothing may
// publish the instance again afterwards, through the grace, the drain and
// the release (the registrar's keeper re-registers a record it lost while
// the instance serves, never once it was withdrawn). The record goes
// (revoked, or its lease expires) and stays gone; Run says the withdraw
// failed (exit 3), even though here the registrar's revoke, once etcd was
// back, removed the record before the exit (the release line err=none).
// Passes on the code of this audit: a guard, not a fix.
func TestRun_ARegistryBackDuringTheGraceDoesNotPublishTheInstanceAgain(t *testing.T) {
	srv, reg := etcdRegistry(t, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	j := &journal{}
	a, err := New("orders", okHandler(), reg, testOptions(j, WithWithdrawTimeout(time.Second), WithGracePeriod(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := start(t, a, runCtx)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stop()
	waitJournal(t, j, "phase:grace") // the withdraw failed: etcd is down
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	records := etcdRecords(t, srv, "orders")
	listed := func() bool { return records() > 0 }
	// Through the rest of the grace, the drain and the release, then a
	// lease's TTL and a second more, the record may only go.
	var runErr error
	returned, gone := false, false
	seen, firstListed := false, false
	deadline := time.Now().Add(60 * time.Second) // for Run to return
	var until time.Time                          // Run returned, plus a TTL and a second
	for n := 0; !returned || time.Now().Before(until); n++ {
		if n == 2000 { // 50 ms apart, above a minute: a bound for the count too
			t.Fatalf("still looking after %d reads: %v", n, j.list())
		}
		if !returned {
			select {
			case runErr = <-done:
				returned, until = true, time.Now().Add(3*time.Second)
			default:
				if time.Now().After(deadline) {
					t.Fatalf("Run did not return within 60s: %v", j.list())
				}
			}
		}
		l := listed()
		if !seen {
			seen, firstListed = true, l
		}
		switch {
		case !l:
			gone = true
		case gone:
			t.Fatalf("the withdrawn instance was published again after its record had gone (journal %v)", j.list())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !gone {
		t.Fatalf("the record of the stopped instance still listed 3s after Run returned")
	}
	t.Logf("listed when etcd was back: %v; Run = %v; release err=%s", firstListed, runErr, j.phaseErr("release"))
	if !errors.Is(runErr, ErrWithdraw) {
		t.Fatalf("Run = %v, want ErrWithdraw: the withdraw failed while etcd was down", runErr)
	}
}
