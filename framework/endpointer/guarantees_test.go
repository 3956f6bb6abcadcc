package endpointer

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// pushInstancer is a full-set instancer the test drives by hand: Register
// keeps the channel, send hands it an event.
type pushInstancer struct{ ch chan chan<- sd.Event }

func newPush() pushInstancer                        { return pushInstancer{make(chan chan<- sd.Event, 1)} }
func (p pushInstancer) Register(ch chan<- sd.Event) { p.ch <- ch }
func (pushInstancer) Deregister(chan<- sd.Event)    {}
func (pushInstancer) Stop()                         {}

// pushDelta is a delta instancer the test drives by hand.
type pushDelta struct{ ch chan chan<- registry.Delta }

func (pushDelta) Register(chan<- sd.Event)                 { panic("full-set path used over a delta instancer") }
func (pushDelta) Deregister(chan<- sd.Event)               {}
func (pushDelta) Stop()                                    {}
func (p pushDelta) RegisterDelta(ch chan<- registry.Delta) { p.ch <- ch }
func (pushDelta) DeregisterDelta(chan<- registry.Delta)    {}

// settled waits for the event being applied under e.mu to be applied in
// full, once part of it (DiscoveryErr) shows.
func settled(e *Endpointer) {
	e.mu.Lock()
	e.mu.Unlock() //nolint:staticcheck // an empty critical section is the point
}

// Over a full-set instancer, an instance that leaves is closed, one listed
// twice is built once, the set is published sorted, and an error keeps
// the last set and is reported by DiscoveryErr until discovery answers.
func TestEndpointer_FullSetUpdatesCloseLeaversDedupeAndSort(t *testing.T) {
	r := newRecorder()
	p := newPush()
	e := New(p, r.factory)
	defer e.Close()
	ch := <-p.ch
	a, b, c := inst(1001).String(), inst(1002).String(), inst(1003).String()
	// Enough instances that a map's order is not sorted by chance.
	first := []string{c, a, b, a}
	for port := 1029; port >= 1010; port-- {
		first = append(first, inst(port).String())
	}
	ch <- sd.Event{Instances: first}
	waitFor(t, "23 targets", func() bool { return len(e.Targets()) >= 23 })
	ts := e.Targets()
	if len(ts) != 23 || !slices.IsSortedFunc(ts, func(x, y *balancer.Target) int { return strings.Compare(x.ID, y.ID) }) {
		t.Fatalf("targets %v, want 23 sorted", ids(ts))
	}
	if built, _ := r.counts(a); built != 1 {
		t.Fatalf("a listed twice was built %d times", built)
	}
	ch <- sd.Event{Instances: []string{a, c}}
	waitFor(t, "b to leave", func() bool { return len(e.Targets()) == 2 })
	if _, closed := r.counts(b); closed != 1 {
		t.Fatalf("b left discovery and was closed %d times, want 1", closed)
	}
	if built, closed := r.counts(a); built != 1 || closed != 0 {
		t.Fatalf("a stayed: built %d closed %d, want 1/0", built, closed)
	}
	down := errors.New("registry down")
	ch <- sd.Event{Err: down}
	waitFor(t, "the discovery error", func() bool { return e.DiscoveryErr() != nil })
	settled(e)
	if !errors.Is(e.DiscoveryErr(), down) {
		t.Fatalf("DiscoveryErr = %v, want the registry's error", e.DiscoveryErr())
	}
	if got := ids(e.Targets()); len(got) != 2 {
		t.Fatalf("after a discovery error the set is %v, want the last known a, c", got)
	}
	if _, closed := r.counts(a); closed != 0 {
		t.Fatal("a closed on a discovery error")
	}
	ch <- sd.Event{Instances: []string{a, c}}
	waitFor(t, "DiscoveryErr to clear once discovery answers", func() bool { return e.DiscoveryErr() == nil })
}

func ids(ts []*balancer.Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// A delta that re-lists an instance already held (a re-list after a
// watch restarts) keeps its target: no second build, no duplicate.
func TestEndpointer_DeltaReListKeepsHeldTargets(t *testing.T) {
	r := newRecorder()
	p := pushDelta{make(chan chan<- registry.Delta, 1)}
	e := New(p, r.factory)
	defer e.Close()
	ch := <-p.ch
	a, b := inst(1001).String(), inst(1002).String()
	ch <- registry.Delta{Added: []string{a}}
	waitFor(t, "a", func() bool { return len(e.Targets()) == 1 })
	first := e.Targets()[0]
	ch <- registry.Delta{Added: []string{a, b}}
	waitFor(t, "b", func() bool { return len(e.Targets()) >= 2 })
	if got := ids(e.Targets()); !slices.Equal(got, []string{a, b}) {
		t.Fatalf("targets %v, want [a b]", got)
	}
	if e.Targets()[0] != first {
		t.Fatal("a's target was replaced by the re-list")
	}
	if built, _ := r.counts(a); built != 1 {
		t.Fatalf("a built %d times, want 1", built)
	}
}

// Wait returns once discovery has answered, even with an error or an
// empty set, and with ErrClosed after Close.
func TestEndpointer_WaitReturnsOnAnErrorAnEmptySetAndClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := New(errInstancer{[]sd.Event{{Err: errors.New("registry down")}}}, newRecorder().factory)
	defer e.Close()
	if err := e.Wait(ctx); err != nil {
		t.Errorf("Wait after a discovery error = %v, want nil (answered)", err)
	}
	p := pushDelta{make(chan chan<- registry.Delta, 1)}
	d := New(p, newRecorder().factory)
	defer d.Close()
	(<-p.ch) <- registry.Delta{}
	if err := d.Wait(ctx); err != nil {
		t.Errorf("Wait after an empty delta = %v, want nil", err)
	}
	silent := New(errInstancer{}, newRecorder().factory)
	silent.Close()
	if err := silent.Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
}

// WithDetector gives each target a breaker, and WithFailure decides what
// counts against it: errors it calls no failure never eject.
func TestEndpointer_DetectorAndFailureReachTheTargets(t *testing.T) {
	d, err := outlier.New(outlier.WithConsecutiveFailures(1), outlier.WithMaxEjectionPercent(100))
	if err != nil {
		t.Fatal(err)
	}
	errBusiness := errors.New("not found")
	failing := func(string) (endpoint.Endpoint, io.Closer, error) {
		return func(context.Context, any) (any, error) { return nil, errBusiness }, nil, nil
	}
	a, b := inst(1001).String(), inst(1002).String()
	e := New(sd.FixedInstancer{a, b}, failing, WithDetector(d),
		WithFailure(func(err error) bool { return !errors.Is(err, errBusiness) }))
	defer e.Close()
	if err := e.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	tg := e.Targets()[0]
	if tg.Breaker() == nil {
		t.Fatal("WithDetector: target has no breaker")
	}
	for range 3 {
		tg.Call(context.Background(), nil)
	}
	if tg.Ejected() {
		t.Fatal("ejected for errors WithFailure says are no failure")
	}
}
