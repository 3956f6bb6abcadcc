package keeper

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

func awaitDone(t *testing.T, k *Keeper, what string) {
	t.Helper()
	select {
	case <-k.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("the Keeper did not end: %s", what)
	}
}

// ErrSuperseded from a re-publish (the record was in doubt, and a newer
// run of the same address holds it now) ends the Keeper withdrawn, as it
// does from Hold: fighting back would make the two overwrite each other.
func TestKeeper_SupersededOnRepublishIsWithdrawn(t *testing.T) {
	rec := &script{hold: make(chan error, 1), publish: func(again bool) (bool, error) {
		if again {
			return false, fmt.Errorf("%w (session 7)", ErrSuperseded)
		}
		return true, nil
	}}
	k, rep, _ := start(t, rec, Config{})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	rec.hold <- errors.New("reconnected")
	awaitDone(t, k, "superseded on re-publish")
	if s, _, _ := rep.last(); s != registry.StateWithdrawn || !errors.Is(k.LastError(), ErrSuperseded) {
		t.Fatalf("state %s, last error %v; want withdrawn, superseded", s, k.LastError())
	}
}

// With LossIsFailure (etcd: a lost lease took the record), any Hold error
// turns the state retrying before the re-publish runs.
func TestKeeper_LossIsFailureReportsRetryingAtOnce(t *testing.T) {
	publishing := make(chan struct{})
	var mu sync.Mutex
	n := 0
	rec := &script{hold: make(chan error, 1), publish: func(bool) (bool, error) {
		mu.Lock()
		n++
		m := n
		mu.Unlock()
		if m == 2 {
			<-publishing // the state before the republish is what /readyz shows
		}
		return true, nil
	}}
	k, rep, _ := start(t, rec, Config{LossIsFailure: true})
	var release sync.Once
	let := func() { release.Do(func() { close(publishing) }) }
	t.Cleanup(let) // before start's Stop, which waits for the publish
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	rec.hold <- errors.New("lease 7 expired")
	waitFor(t, "retrying before the republish", func() bool {
		s, _, _ := rep.last()
		return s == registry.StateRetrying
	})
	let()
	waitFor(t, "registered again", func() bool {
		s, _, _ := rep.last()
		return s == registry.StateRegistered
	})
}

// After Withdraw (its owner is deleting the record) a loss of the record
// ends the Keeper instead of publishing it again.
func TestKeeper_WithdrawnIsNotPublishedAgain(t *testing.T) {
	var mu sync.Mutex
	publishes := 0
	rec := &script{hold: make(chan error, 1), publish: func(bool) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		publishes++
		return true, nil
	}}
	k, _, _ := start(t, rec, Config{LossIsFailure: true})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	k.Withdraw()
	rec.hold <- errors.New("znode deleted") // the owner's own delete
	awaitDone(t, k, "withdrawn, then the record went")
	mu.Lock()
	defer mu.Unlock()
	if publishes != 1 {
		t.Fatalf("%d publishes; want only the first (none after Withdraw)", publishes)
	}
}

// "registration confirmed" follows a presumed loss once, not every later
// check that finds the record in place.
func TestKeeper_ConfirmedIsLoggedOncePerPresumedLoss(t *testing.T) {
	rec := &script{hold: make(chan error, 1), publish: func(bool) (bool, error) { return false, nil }}
	k, rep, logs := start(t, rec, Config{})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	_, n0, _ := rep.last()
	k.Lost(errors.New("no contact for the session timeout")) // reports retrying
	rec.hold <- errors.New("reconnected")
	// Each check reports after it logs: a report count is a point by
	// which its line is written.
	waitFor(t, "the first check", func() bool { _, n, _ := rep.last(); return n == n0+2 })
	rec.hold <- errors.New("reconnected again")
	waitFor(t, "the second check", func() bool { _, n, _ := rep.last(); return n == n0+3 })
	if c := strings.Count(logs.String(), "registration confirmed"); c != 1 {
		t.Fatalf("%d confirmed lines; want 1 (one presumed loss):\n%s", c, logs)
	}
}
