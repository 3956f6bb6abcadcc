package keeper

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// script is a Record whose answers the test sets: publish answers each
// Publish (nil: success); hold ends each Hold with the error it receives.
type script struct {
	publish func(again bool) (bool, error)
	hold    chan error
}

func (s *script) Publish(_ context.Context, again bool) (bool, error) { return s.publish(again) }

func (s *script) Hold(ctx context.Context) error {
	select {
	case err := <-s.hold:
		return err
	case <-ctx.Done():
		return nil
	}
}

// reports collects what a Keeper reports, as a registry.Tracker would.
type reports struct {
	mu     sync.Mutex
	states []registry.State
	rereg  int
}

func (r *reports) report(s registry.State, _ error, again bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
	if again {
		r.rereg++
	}
}

func (r *reports) last() (registry.State, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return "", 0, 0
	}
	return r.states[len(r.states)-1], len(r.states), r.rereg
}

func start(t *testing.T, rec Record, cfg Config) (*Keeper, *reports, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	rep := &reports{}
	cfg.Logger, cfg.Name, cfg.Report = log.NewLogfmtLogger(logs), []any{"key", "k1"}, rep.report
	if cfg.BackoffMin == 0 {
		cfg.BackoffMin, cfg.BackoffMax = 5*time.Millisecond, 20*time.Millisecond
	}
	k := New(rec, cfg)
	k.Start()
	t.Cleanup(k.Stop)
	return k, rep, logs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ready(t *testing.T, k *Keeper) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return k.Wait(ctx, "register k1")
}

var retryIn = regexp.MustCompile(`retry_in=(\S+)`)

// A lost record is published again however often that is refused — even
// a conflict, since the other holder may go — at the pace of a capped,
// jittered backoff: 50 refused attempts within the bound, which only a
// capped backoff can do (uncapped, from 5 ms, attempt 50 would come after
// years) and only a loop that never gives up.
func TestKeeper_RepublishesForeverWithCappedJitteredBackoff(t *testing.T) {
	var mu sync.Mutex
	refuse := false
	attempts := 0
	rec := &script{hold: make(chan error, 1), publish: func(again bool) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if refuse {
			return false, fmt.Errorf("%w: held by another", registry.ErrConflict)
		}
		return true, nil
	}}
	k, rep, logs := start(t, rec, Config{LossIsFailure: true})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	refuse = true
	mu.Unlock()
	rec.hold <- errors.New("lease lost")

	const wantFailures = 50
	failures := func() int { return strings.Count(logs.String(), "registration attempt failed") }
	waitFor(t, "50 refused attempts", func() bool { return failures() >= wantFailures })
	if s, _, _ := rep.last(); s != registry.StateRetrying {
		t.Fatalf("state %q while refused, want retrying", s)
	}
	waits := map[string]bool{}
	for _, m := range retryIn.FindAllStringSubmatch(logs.String(), -1) {
		waits[m[1]] = true
		if d, err := time.ParseDuration(m[1]); err != nil || d > 20*time.Millisecond {
			t.Fatalf("wait %s over the cap of 20ms", m[1])
		}
	}
	if len(waits) < wantFailures/2 {
		t.Fatalf("%d distinct waits between %d attempts: %v; want them jittered", len(waits), failures(), waits)
	}

	mu.Lock()
	refuse = false
	mu.Unlock()
	waitFor(t, "registered again", func() bool {
		s, _, rereg := rep.last()
		return s == registry.StateRegistered && rereg == 1
	})
	if !strings.Contains(logs.String(), "re-registered") {
		t.Fatalf("the re-registration was not logged:\n%.2000s", logs)
	}

	// The next outage counts its own attempts (report j47c: a second
	// outage's first line said failures=7).
	before := len(logs.String())
	mu.Lock()
	refuse = true
	mu.Unlock()
	rec.hold <- errors.New("lease lost again")
	waitFor(t, "a refused attempt of the second outage", func() bool {
		return strings.Contains(logs.String()[before:], "registration attempt failed")
	})
	if second := logs.String()[before:]; !strings.Contains(second, "failures=1 ") {
		t.Fatalf("the second outage's first failure is not failures=1:\n%.1000s", second)
	}
}

// A conflict on the first claim is the caller's to decide: the Keeper
// hands it over and ends, without retrying.
func TestKeeper_ConflictOnTheFirstClaimEndsIt(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	rec := &script{publish: func(bool) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		return false, fmt.Errorf("%w: held by another", registry.ErrConflict)
	}}
	k, _, _ := start(t, rec, Config{})
	if err := ready(t, k); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("first outcome %v, want ErrConflict", err)
	}
	select {
	case <-k.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the Keeper went on after a conflict")
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts != 1 {
		t.Fatalf("%d attempts, want 1", attempts)
	}
}

// A record taken over by a newer run of the same address is given up:
// reported withdrawn, not fought over.
func TestKeeper_SupersededIsWithdrawnNotFought(t *testing.T) {
	rec := &script{hold: make(chan error, 1), publish: func(bool) (bool, error) { return true, nil }}
	k, rep, logs := start(t, rec, Config{LossIsFailure: true})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	rec.hold <- fmt.Errorf("%w (lease 7)", ErrSuperseded)
	select {
	case <-k.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("the Keeper went on after being superseded")
	}
	if s, _, _ := rep.last(); s != registry.StateWithdrawn {
		t.Fatalf("state %q, want withdrawn", s)
	}
	if !errors.Is(k.LastError(), ErrSuperseded) || !strings.Contains(logs.String(), "not re-registering") {
		t.Fatalf("last error %v; logs:\n%s", k.LastError(), logs)
	}
}

// A record only in doubt (LossIsFailure unset) that Publish finds in
// place is no failure and no re-registration; errors the Record asks to
// wait out (Patient) are not failures either.
func TestKeeper_DoubtAndPatientErrorsAreNoFailure(t *testing.T) {
	var mu sync.Mutex
	answers := []error{nil, errors.New("connection down"), errors.New("connection down"), nil}
	rec := &script{hold: make(chan error, 1), publish: func(bool) (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		err := answers[0]
		if len(answers) > 1 {
			answers = answers[1:]
		}
		return false, err
	}}
	k, rep, logs := start(t, rec, Config{Patient: func(err error) bool { return err.Error() == "connection down" }})
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	rec.hold <- errors.New("reconnected")
	waitFor(t, "the check after the doubt", func() bool {
		_, n, _ := rep.last()
		return n == 2
	})
	rep.mu.Lock()
	states := append([]registry.State(nil), rep.states...)
	rep.mu.Unlock()
	for _, s := range states {
		if s != registry.StateRegistered {
			t.Fatalf("reported %v, want only registered", states)
		}
	}
	if _, _, rereg := rep.last(); rereg != 0 || strings.Contains(logs.String(), "attempt failed") {
		t.Fatalf("%d re-registrations; logs:\n%s", rereg, logs)
	}
}

// Without LossIsFailure, a Hold error marked ErrLost (the ZooKeeper
// server said the session expired) turns the state retrying at once, as a
// loss does: /readyz must not stay green while the record is surely gone
// and the next Publish has not run yet (a tester saw 1–2 s of it). Lost,
// called while the registry cannot be reached, logs the presumed loss,
// and the Keeper logs when the record is seen in place again.
func TestKeeper_SureLossIsRetryingAtOnceAndPresumedLossIsLogged(t *testing.T) {
	publishing := make(chan struct{})
	var calls sync.Mutex
	n := 0
	rec := &script{hold: make(chan error, 1), publish: func(bool) (bool, error) {
		calls.Lock()
		defer calls.Unlock()
		n++
		if n == 2 {
			<-publishing // the republish waits: the state before it is what /readyz shows
			return true, nil
		}
		return n != 3, nil // the third publish finds the record in place
	}}
	k, rep, logs := start(t, rec, Config{})
	var release sync.Once
	let := func() { release.Do(func() { close(publishing) }) }
	t.Cleanup(let) // before start's Stop, which waits for the publish to return
	if err := ready(t, k); err != nil {
		t.Fatal(err)
	}
	rec.hold <- fmt.Errorf("%w: watch ended: session expired", ErrLost)
	waitFor(t, "retrying before the republish", func() bool {
		s, _, _ := rep.last()
		return s == registry.StateRetrying
	})
	let()
	waitFor(t, "registered again", func() bool {
		s, _, rereg := rep.last()
		return s == registry.StateRegistered && rereg == 1
	})
	if !strings.Contains(logs.String(), `msg="registration lost, re-registering"`) {
		t.Fatalf("no loss line:\n%s", logs)
	}

	k.Lost(errors.New("no contact for the session timeout"))
	if s, _, _ := rep.last(); s != registry.StateRetrying || !strings.Contains(logs.String(), "registration presumed lost") {
		t.Fatalf("after Lost: state %s; logs:\n%s", s, logs)
	}
	rec.hold <- nil // back, the record outlived it
	waitFor(t, "the record confirmed", func() bool {
		s, _, _ := rep.last()
		return s == registry.StateRegistered && strings.Contains(logs.String(), "registration confirmed")
	})
}

// Stop ends the loop, also one that is waiting out a backoff, and is
// idempotent; a Keeper never started stops at once.
func TestKeeper_StopEndsTheLoop(t *testing.T) {
	rec := &script{publish: func(bool) (bool, error) { return false, errors.New("down") }}
	k, _, _ := start(t, rec, Config{BackoffMin: time.Hour, BackoffMax: time.Hour})
	waitFor(t, "the first failure", func() bool { return k.LastError() != nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := k.Wait(ctx, "register k1"); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "register k1: ") || !strings.Contains(err.Error(), "last error: down") {
		t.Fatalf("Wait with an ended ctx: %v", err)
	}
	stopped := make(chan struct{})
	go func() {
		k.Stop()
		k.Stop()
		New(rec, Config{}).Stop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("Stop hung")
	}
	if err := k.Wait(context.Background(), "register k1"); err == nil || !strings.Contains(err.Error(), "before it was published") {
		t.Fatalf("Wait on a Keeper stopped before publishing: %v", err)
	}
}

// A wait that ends before any attempt failed says so, not "last error:
// %!w(<nil>)"; one after a failure wraps both errors.
func TestGaveUp_WithAndWithoutALastError(t *testing.T) {
	if err := gaveUp("register k1", context.Canceled, nil); !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "%!") ||
		err.Error() != "register k1: context canceled (no attempt had failed yet)" {
		t.Errorf("without a last error: %q", err)
	}
	down := errors.New("down")
	if err := gaveUp("register k1", context.DeadlineExceeded, down); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, down) {
		t.Errorf("with a last error: %v does not wrap both", err)
	}
}
