package registrytest

import (
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// instancerStopEndsItsSubscriptions: once Stop returns, the instancer's
// subscribers get no change of the registry, while another instancer of
// the same service on the same Registry goes on. The memory backend's
// Stop used to do nothing: a subscriber that never deregistered kept
// getting every change (report s6).
func (s *suite) instancerStopEndsItsSubscriptions(t *testing.T) {
	svc := s.service()
	a, w := s.open(t), s.open(t)
	in, err := w.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", svc, err)
	}
	// The owner's Stop below; this one, after the Recorder deregisters,
	// must be harmless.
	t.Cleanup(func() { s.bounded(t, "instancer Stop", in.Stop) })
	rec := Record(t, in)
	live := s.watch(t, w, svc)
	one, two := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)
	s.register(t, a, one)
	rec.WaitFor(t, s.h.Timeout, "the instancer to be stopped shows "+one.ID, Has(one.ID))
	live.waitFor(t, one.ID, live.exactly(one.ID))

	s.bounded(t, "instancer Stop", in.Stop)
	s.changeAfter(t, a, live, one, two)
	s.nothingAfter(t, rec, "its Stop returned", one, two)
}

// closeStopsItsInstancers: once Close returns, the subscribers of the
// Registry's instancers get no change of the registry, while the
// instancers of another Registry of the same server go on.
func (s *suite) closeStopsItsInstancers(t *testing.T) {
	svc := s.service()
	a, w, other := s.open(t), s.open(t), s.open(t)
	in, err := w.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", svc, err)
	}
	t.Cleanup(func() { s.bounded(t, "instancer Stop after Close", in.Stop) })
	rec := Record(t, in)
	live := s.watch(t, other, svc)
	one, two := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)
	s.register(t, a, one)
	rec.WaitFor(t, s.h.Timeout, "the closing Registry's instancer shows "+one.ID, Has(one.ID))
	live.waitFor(t, one.ID, live.exactly(one.ID))

	s.bounded(t, "Registry.Close", func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	s.changeAfter(t, a, live, one, two)
	s.nothingAfter(t, rec, "its Registry's Close returned", one, two)
}

// changeAfter registers two and withdraws one through a, and waits until
// the live watcher shows both changes: then the registry has sent them
// to every instancer still running.
func (s *suite) changeAfter(t *testing.T, a registry.Registry, live *watcher, one, two registry.Instance) {
	t.Helper()
	s.register(t, a, two)
	live.waitFor(t, one.ID+" and "+two.ID, live.exactly(one.ID, two.ID))
	s.deregister(t, a, one)
	live.waitFor(t, two.ID+" alone", live.exactly(two.ID))
}

// nothingAfter fails if rec saw either change changeAfter made: each set
// it shows after the stop must be the one it showed before (one, not two),
// judged by content, not by counting events, so an event the Recorder
// was still storing as the stop returned is no failure.
func (s *suite) nothingAfter(t *testing.T, rec *Recorder, after string, one, two registry.Instance) {
	t.Helper()
	seen := false // one was shown
	for i, ev := range rec.Events() {
		_, hasOne := ByID(ev, one.ID)
		_, hasTwo := ByID(ev, two.ID)
		switch {
		case hasTwo:
			t.Errorf("event %d shows %s, registered after %s: %v", i, two.ID, after, IDs(ev))
		case seen && !hasOne && ev.Err == nil:
			t.Errorf("event %d lacks %s, withdrawn after %s: %v", i, one.ID, after, IDs(ev))
		}
		seen = seen || hasOne
	}
}
