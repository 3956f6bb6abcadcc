package registrytest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// event is an sd.Event as a watcher saw it.
type event struct{ sd.Event }

// byID returns the parsed instance with the given ID.
func (ev event) byID(id string) (registry.Instance, bool) {
	for _, s := range ev.Instances {
		if inst, err := registry.ParseInstance(s); err == nil && inst.ID == id {
			return inst, true
		}
	}
	return registry.Instance{}, false
}

// ids returns the sorted IDs of the event's instances (never nil).
func (ev event) ids() []string {
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

// watcher subscribes to one service and keeps every event, reading its
// channel all the time as sd.Instancer requires.
type watcher struct {
	timeout time.Duration
	mu      sync.Mutex
	events  []event
	changed chan struct{} // closed and replaced on every event
}

// watch opens an instancer of service on r and records its events until
// the test ends.
func (s *suite) watch(t *testing.T, r registry.Registry, service string) *watcher {
	t.Helper()
	in, err := r.Instancer(s.ctx(t), service)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", service, err)
	}
	w := &watcher{timeout: s.h.Timeout, changed: make(chan struct{})}
	ch := make(chan sd.Event)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case ev := <-ch:
				w.mu.Lock()
				w.events = append(w.events, event{ev})
				close(w.changed)
				w.changed = make(chan struct{})
				w.mu.Unlock()
			case <-stop:
				return
			}
		}
	}()
	in.Register(ch)
	t.Cleanup(func() {
		in.Deregister(ch)
		close(stop)
		<-done
		in.Stop()
	})
	return w
}

// history returns every event so far.
func (w *watcher) history() []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.events)
}

// waitFor waits until the latest event satisfies ok and returns it.
func (w *watcher) waitFor(t *testing.T, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.NewTimer(w.timeout)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		var last event
		n := len(w.events)
		if n > 0 {
			last = w.events[n-1]
		}
		changed := w.changed
		w.mu.Unlock()
		if n > 0 && ok(last) {
			return last
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("after %s: no event with %s; last of %d events: %v (err %v)", w.timeout, what, n, last.Instances, last.Err)
		}
	}
}

// exactly matches an error-free event whose instances have exactly ids.
func (w *watcher) exactly(ids ...string) func(event) bool {
	want := slices.Sorted(slices.Values(ids))
	if want == nil {
		want = []string{}
	}
	return func(ev event) bool { return ev.Err == nil && slices.Equal(ev.ids(), want) }
}
