package registrytest

import (
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// event is an sd.Event as a watcher saw it.
type event struct{ sd.Event }

func (ev event) byID(id string) (registry.Instance, bool) { return ByID(ev.Event, id) }

func (ev event) ids() []string { return IDs(ev.Event) }

// watcher records every event of one service's instancer; its waits are
// bounded by the harness's timeout.
type watcher struct {
	timeout time.Duration
	rec     *Recorder
}

// watch opens an instancer of service on r and records its events until
// the test ends, then stops the instancer.
func (s *suite) watch(t *testing.T, r registry.Registry, service string) *watcher {
	t.Helper()
	in, err := r.Instancer(s.ctx(t), service)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", service, err)
	}
	// Runs after the Recorder's cleanup deregisters.
	t.Cleanup(func() { s.bounded(t, "instancer Stop", in.Stop) })
	return &watcher{timeout: s.h.Timeout, rec: Record(t, in)}
}

// history returns every event so far.
func (w *watcher) history() []event {
	var out []event
	for _, ev := range w.rec.Events() {
		out = append(out, event{ev})
	}
	return out
}

// waitFor waits until the latest event satisfies ok and returns it.
func (w *watcher) waitFor(t *testing.T, what string, ok func(event) bool) event {
	t.Helper()
	ev, _ := w.rec.WaitFor(t, w.timeout, what, func(ev sd.Event) bool { return ok(event{ev}) })
	return event{ev}
}

// waitForWithin is waitFor with its own bound d (at most the harness's
// timeout).
func (w *watcher) waitForWithin(t *testing.T, d time.Duration, what string, ok func(event) bool) event {
	t.Helper()
	ev, _ := w.rec.WaitFor(t, min(d, w.timeout), what, func(ev sd.Event) bool { return ok(event{ev}) })
	return event{ev}
}

// exactly matches an error-free event whose instances have exactly ids.
func (w *watcher) exactly(ids ...string) func(event) bool {
	want := slices.Sorted(slices.Values(ids))
	if want == nil {
		want = []string{}
	}
	return func(ev event) bool { return ev.Err == nil && slices.Equal(ev.ids(), want) }
}
