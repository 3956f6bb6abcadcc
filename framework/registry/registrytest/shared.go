package registrytest

import (
	"testing"

	"github.com/go-kit/kit/sd"
)

// channelOfTwoInstancersOutlivesOne: a channel registered through two
// instancers of one service is two subscriptions, as two watches of etcd
// are: Deregister or Stop through one ends that one, and the other goes
// on sending to the channel. The memory backend's instancers share one
// cache per service, which held the channel once, so either's Stop (or
// Deregister) ended both (report s58-s).
func (s *suite) channelOfTwoInstancersOutlivesOne(t *testing.T) {
	svc := s.service()
	a, w := s.open(t), s.open(t)
	first, err := w.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", svc, err)
	}
	t.Cleanup(func() { s.bounded(t, "instancer Stop", first.Stop) })
	second, err := w.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatalf("second Instancer(%s): %v", svc, err)
	}
	t.Cleanup(func() { s.bounded(t, "instancer Stop", second.Stop) })
	// The channel gets each change from both while both run: its latest
	// event is judged by content, whichever instancer sent it.
	rec := record(t, first, second)
	one, two := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)
	s.register(t, a, one)
	rec.WaitFor(t, s.h.Timeout, "the shared channel shows "+one.ID, Has(one.ID))

	s.bounded(t, "Deregister through the first instancer", func() { first.Deregister(rec.ch) })
	s.register(t, a, two)
	rec.WaitFor(t, s.h.Timeout, "the shared channel shows "+two.ID+" after the first instancer's Deregister",
		func(ev sd.Event) bool { return Has(one.ID)(ev) && Has(two.ID)(ev) })

	s.bounded(t, "Register through the first instancer again", func() { first.Register(rec.ch) })
	s.bounded(t, "the first instancer's Stop", first.Stop)
	s.deregister(t, a, one)
	rec.WaitFor(t, s.h.Timeout, "the shared channel shows "+one.ID+" withdrawn after the first instancer's Stop",
		func(ev sd.Event) bool { return Lacks(one.ID)(ev) && Has(two.ID)(ev) })
}
