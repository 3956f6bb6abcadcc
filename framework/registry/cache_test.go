package registry

import (
	"errors"
	"slices"
	"strconv"
	"testing"

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
	if d := <-deltas; len(d.Added) != 1000 || len(d.Removed) != 0 {
		t.Fatalf("first delivery: %d added, %d removed; want the whole set added", len(d.Added), len(d.Removed))
	}
	events := make(chan sd.Event, 4)
	c.Register(events)
	<-events

	c.Apply([]string{"10.0.9.9:80"}, []string{"10.0.0.5:80"}, nil)
	d := <-deltas
	if !slices.Equal(d.Added, []string{"10.0.9.9:80"}) || !slices.Equal(d.Removed, []string{"10.0.0.5:80"}) {
		t.Fatalf("delta %+v; want one added and one removed", d)
	}
	ev := <-events
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
	if d := <-deltas; d.Err == nil || len(d.Added)+len(d.Removed) != 0 {
		t.Fatalf("error delivery %+v", d)
	}
	if ev := <-events; ev.Err == nil || len(ev.Instances) != 1000 {
		t.Fatalf("go-kit error event: %d instances, err %v; want the last good set with the error", len(ev.Instances), ev.Err)
	}
	// A whole set given to Update reaches delta subscribers as its diff.
	next := slices.Clone(ev.Instances)[1:]
	c.Update(sd.Event{Instances: next})
	if d := <-deltas; len(d.Added) != 0 || len(d.Removed) != 1 || d.Err != nil {
		t.Fatalf("Update diff %+v; want one removed and the error cleared", d)
	}
}
