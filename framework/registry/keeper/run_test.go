package keeper

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// newKeeper is start without starting: for Run.
func newKeeper(t *testing.T, rec Record) (*Keeper, *reports) {
	t.Helper()
	rep := &reports{}
	k := New(rec, Config{Logger: log.NewLogfmtLogger(&syncbuf.Buffer{}), Name: []any{"key", "k1"}, Report: rep.report,
		BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, LossIsFailure: true})
	t.Cleanup(k.Stop)
	return k, rep
}

func runCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// counter counts Publish calls and answers them from a list (then nil).
type counter struct {
	mu      sync.Mutex
	n       int
	answers []error
}

func (c *counter) publish(bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if len(c.answers) > 0 {
		err := c.answers[0]
		c.answers = c.answers[1:]
		return err == nil, err
	}
	return true, nil
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Run returns once the first publish succeeded and leaves the loop
// holding the record: a loss is published again, as after Start.
func TestRun_PublishesThenHoldsAndRepublishes(t *testing.T) {
	c := &counter{}
	rec := &script{publish: c.publish, hold: make(chan error, 1)}
	k, rep := newKeeper(t, rec)
	if err := k.Run(runCtx(t), "register k1"); err != nil {
		t.Fatal(err)
	}
	if n := c.count(); n != 1 {
		t.Fatalf("%d publishes when Run returned, want 1", n)
	}
	if s, _, _ := rep.last(); s != registry.StateRegistered {
		t.Fatalf("state %q after Run, want registered", s)
	}
	rec.hold <- errors.New("lease lost")
	waitFor(t, "the lost record published again", func() bool {
		s, _, rereg := rep.last()
		return c.count() == 2 && s == registry.StateRegistered && rereg == 1
	})
}

// A failed first attempt is retried by the loop, with backoff, and Run
// returns once one succeeds; a conflict is returned at once and ends the
// Keeper; a ctx that ends first is Run's error, with the last failure.
func TestRun_RetriesAFailedFirstAttemptAndReturnsConflictsAndDeadlines(t *testing.T) {
	t.Run("retried", func(t *testing.T) {
		c := &counter{answers: []error{errors.New("etcd unreachable"), errors.New("etcd unreachable")}}
		k, _ := newKeeper(t, &script{publish: c.publish, hold: make(chan error)})
		if err := k.Run(runCtx(t), "register k1"); err != nil {
			t.Fatal(err)
		}
		if n := c.count(); n != 3 {
			t.Fatalf("%d publishes, want 3 (two failed, then published)", n)
		}
	})
	t.Run("conflict", func(t *testing.T) {
		c := &counter{answers: []error{fmt.Errorf("%w: held by another", registry.ErrConflict)}}
		k, _ := newKeeper(t, &script{publish: c.publish, hold: make(chan error)})
		if err := k.Run(runCtx(t), "register k1"); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("Run = %v, want ErrConflict", err)
		}
		select {
		case <-k.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("the Keeper went on after a conflict")
		}
		if n := c.count(); n != 1 {
			t.Fatalf("%d publishes, want 1", n)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		c := &counter{answers: make([]error, 1000)}
		for i := range c.answers {
			c.answers[i] = errors.New("etcd unreachable")
		}
		k, _ := newKeeper(t, &script{publish: c.publish, hold: make(chan error)})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := k.Run(ctx, "register k1")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "etcd unreachable") {
			t.Fatalf("Run = %v, want the deadline with the last failure", err)
		}
	})
}

// Stop during Run's first publish: Run says it was withdrawn, and the
// loop never starts (Done is closed, nothing more is published).
func TestRun_StoppedDuringTheFirstPublish(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	c := &counter{}
	rec := &script{hold: make(chan error), publish: func(again bool) (bool, error) {
		if c.count() == 0 {
			close(entered)
			<-release
		}
		return c.publish(again)
	}}
	k, _ := newKeeper(t, rec)
	errc := make(chan error, 1)
	go func() { errc <- k.Run(runCtx(t), "register k1") }()
	<-entered
	stopped := make(chan struct{})
	go func() { k.Stop(); close(stopped) }() // waits for Run's attempt
	k.Cancel()                               // Stop has cancelled too; this makes sure before release
	close(release)
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "withdrawn") {
			t.Fatalf("Run = %v, want withdrawn", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("Stop did not return")
	}
	if n := c.count(); n != 1 {
		t.Fatalf("%d publishes, want 1", n)
	}
}
