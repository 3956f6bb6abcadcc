package registry

import (
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
)

func instances(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "10.0.0." + strconv.Itoa(i) + ":80"
	}
	return out
}

// A change to a large set reaches a delta subscriber as just that change
// (its cost is the change's, not the set's), while a go-kit subscriber
// still gets the whole set, sorted.
func TestCache_ApplyHandsDeltaSubscribersOnlyTheChange(t *testing.T) {
	c := NewCache()
	c.Update(sd.Event{Instances: instances(1000)})
	deltas := make(chan Delta, 4)
	c.RegisterDelta(deltas)
	if d := recvWithin(t, deltas, "the current set for a new delta subscriber"); len(d.Added) != 1000 || len(d.Removed) != 0 {
		t.Fatalf("first delivery: %d added, %d removed; want the whole set added", len(d.Added), len(d.Removed))
	}
	events := make(chan sd.Event, 4)
	c.Register(events)
	recvWithin(t, events, "the current set for a new go-kit subscriber")

	c.Apply([]string{"10.0.9.9:80"}, []string{"10.0.0.5:80"}, nil)
	d := recvWithin(t, deltas, "the delta of an Apply")
	if !slices.Equal(d.Added, []string{"10.0.9.9:80"}) || !slices.Equal(d.Removed, []string{"10.0.0.5:80"}) {
		t.Fatalf("delta %+v; want one added and one removed", d)
	}
	ev := recvWithin(t, events, "the go-kit event of an Apply")
	if len(ev.Instances) != 1000 || !slices.IsSorted(ev.Instances) || slices.Contains(ev.Instances, "10.0.0.5:80") || !slices.Contains(ev.Instances, "10.0.9.9:80") {
		t.Fatalf("go-kit event: %d instances, sorted %v", len(ev.Instances), slices.IsSorted(ev.Instances))
	}

	// No change, no event; an error alone is an event with an empty delta.
	c.Apply([]string{"10.0.9.9:80"}, []string{"10.0.0.5:80"}, nil)
	c.Update(sd.Event{Instances: ev.Instances})
	select {
	case d := <-deltas:
		t.Fatalf("unchanged set delivered %+v", d)
	default:
	}
	boom := errors.New("etcd unreachable")
	c.Apply(nil, nil, boom)
	if d := recvWithin(t, deltas, "the delta of an error"); d.Err == nil || len(d.Added)+len(d.Removed) != 0 {
		t.Fatalf("error delivery %+v", d)
	}
	if ev := recvWithin(t, events, "the go-kit event of an error"); ev.Err == nil || len(ev.Instances) != 1000 {
		t.Fatalf("go-kit error event: %d instances, err %v; want the last good set with the error", len(ev.Instances), ev.Err)
	}
	// A whole set given to Update reaches delta subscribers as its diff.
	next := slices.Clone(ev.Instances)[1:]
	c.Update(sd.Event{Instances: next})
	if d := recvWithin(t, deltas, "the delta of an Update"); len(d.Added) != 0 || len(d.Removed) != 1 || d.Err != nil {
		t.Fatalf("Update diff %+v; want one removed and the error cleared", d)
	}
}

// recvWithin returns the next value on ch, or fails the test naming what
// did not arrive: a Cache that stops sending must fail the test at once,
// not leave it waiting for go test's timeout. The sends are synchronous,
// so anything due is there already; 10 s is for a machine under load.
func recvWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not arrive within 10s", what)
		var zero T
		return zero
	}
}

// A subscriber registered once the state is known gets the current set at
// once, before any change, on both channel kinds; one registered before
// any state gets nothing until the first state (docs/registry.md, the
// helpers a backend uses: go-kit's semantics). Without the first delivery
// an endpointer registered on a quiet service would wait for a change
// that may never come.
func TestCache_ANewSubscriberGetsTheCurrentSetAtOnce(t *testing.T) {
	c := NewCache()
	early := make(chan sd.Event, 4)
	c.Register(early)
	earlyDeltas := make(chan Delta, 4)
	c.RegisterDelta(earlyDeltas)
	select {
	case ev := <-early:
		t.Fatalf("a subscriber before any state got %+v; want nothing until the first state", ev)
	case d := <-earlyDeltas:
		t.Fatalf("a delta subscriber before any state got %+v; want nothing until the first state", d)
	default:
	}

	c.Update(sd.Event{Instances: []string{"10.0.0.2:80", "10.0.0.1:80"}})
	want := []string{"10.0.0.1:80", "10.0.0.2:80"}
	if ev := recvWithin(t, early, "the first state for a subscriber registered before it"); !slices.Equal(ev.Instances, want) {
		t.Fatalf("first state %v; want %v", ev.Instances, want)
	}
	recvWithin(t, earlyDeltas, "the first state for a delta subscriber registered before it")

	// No change follows: whatever a new subscriber gets comes from its
	// registration alone.
	events := make(chan sd.Event, 4)
	c.Register(events)
	ev := recvWithin(t, events, "guarantee \"a new subscriber gets the current set at once\" (Cache.Register)")
	if !slices.Equal(ev.Instances, want) || ev.Err != nil {
		t.Fatalf("new subscriber got %v, %v; want %v and no error", ev.Instances, ev.Err, want)
	}
	deltas := make(chan Delta, 4)
	c.RegisterDelta(deltas)
	d := recvWithin(t, deltas, "guarantee \"a new delta subscriber gets the current set at once\" (Cache.RegisterDelta)")
	if got := slices.Sorted(slices.Values(d.Added)); !slices.Equal(got, want) || len(d.Removed) != 0 || d.Err != nil {
		t.Fatalf("new delta subscriber got %+v; want %v added", d, want)
	}

	// The error in force comes with the set.
	boom := errors.New("registry unreachable")
	c.Apply(nil, nil, boom)
	for _, ch := range []chan sd.Event{early, events} {
		recvWithin(t, ch, "the error event")
	}
	for _, ch := range []chan Delta{earlyDeltas, deltas} {
		recvWithin(t, ch, "the error delta")
	}
	late := make(chan sd.Event, 4)
	c.Register(late)
	if ev := recvWithin(t, late, "guarantee \"a new subscriber gets the current set at once\" with the error in force"); !errors.Is(ev.Err, boom) || !slices.Equal(ev.Instances, want) {
		t.Fatalf("subscriber after an error got %v, %v; want %v with the error", ev.Instances, ev.Err, want)
	}
}
