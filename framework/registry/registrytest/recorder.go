package registrytest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// Recorder keeps every event an sd.Instancer sends to one subscriber,
// reading the channel all the time as sd.Instancer requires, so a
// backend's own tests can wait for the state they expect without writing
// the subscriber loop again. Safe for concurrent use.
type Recorder struct {
	ch      chan sd.Event // the channel it reads
	mu      sync.Mutex
	events  []sd.Event
	changed chan struct{} // closed and replaced on every event
}

// Record subscribes a Recorder to in until the test ends; it deregisters
// then but leaves stopping in to its owner.
func Record(t testing.TB, in sd.Instancer) *Recorder {
	t.Helper()
	return record(t, in)
}

// record subscribes one Recorder's channel to every instancer of ins, and
// deregisters it from each when the test ends.
func record(t testing.TB, ins ...sd.Instancer) *Recorder {
	t.Helper()
	ch := make(chan sd.Event)
	r := &Recorder{ch: ch, changed: make(chan struct{})}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-ch:
				r.mu.Lock()
				r.events = append(r.events, ev)
				close(r.changed)
				r.changed = make(chan struct{})
				r.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	for _, in := range ins {
		in.Register(ch)
	}
	t.Cleanup(func() {
		for _, in := range ins {
			in.Deregister(ch)
		}
		close(stop)
		<-done
	})
	return r
}

// Events returns every event so far, oldest first.
func (r *Recorder) Events() []sd.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// last returns the latest event, how many there were, and a channel closed
// at the next one.
func (r *Recorder) last() (sd.Event, int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ev sd.Event
	if n := len(r.events); n > 0 {
		ev = r.events[n-1]
	}
	return ev, len(r.events), r.changed
}

// WaitFor waits up to d for the latest event to satisfy ok and returns it
// with the time waited; the test fails, naming what, if none does.
func (r *Recorder) WaitFor(t testing.TB, d time.Duration, what string, ok func(sd.Event) bool) (sd.Event, time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ev, n, changed := r.last()
		if n > 0 && ok(ev) {
			return ev, time.Since(start)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("after %s: no event where %s; last of %d events: %v (err %v)", d, what, n, ev.Instances, ev.Err)
		}
	}
}

// ByID returns the parsed instance with the given ID from an event.
func ByID(ev sd.Event, id string) (registry.Instance, bool) {
	for _, s := range ev.Instances {
		if inst, err := registry.ParseInstance(s); err == nil && inst.ID == id {
			return inst, true
		}
	}
	return registry.Instance{}, false
}

// IDs returns the sorted IDs of an event's instances (never nil); an
// instance string that does not parse shows as "unparseable:" + it.
func IDs(ev sd.Event) []string {
	out := []string{}
	for _, s := range ev.Instances {
		if inst, err := registry.ParseInstance(s); err == nil {
			out = append(out, inst.ID)
		} else {
			out = append(out, "unparseable:"+s)
		}
	}
	slices.Sort(out)
	return out
}

// Has matches an error-free event that holds instance id.
func Has(id string) func(sd.Event) bool {
	return func(ev sd.Event) bool { _, ok := ByID(ev, id); return ok && ev.Err == nil }
}

// Lacks matches an error-free event without instance id.
func Lacks(id string) func(sd.Event) bool {
	return func(ev sd.Event) bool { _, ok := ByID(ev, id); return !ok && ev.Err == nil }
}
