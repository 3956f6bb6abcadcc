package registrytest

import (
	"testing"

	"github.com/go-kit/kit/sd"
)

// firstEventHasTheSet: an instancer knows the set when Instancer returns.
// go-kit's sd.NewEndpointer registers right after the constructor and
// serves its first call from the event Register hands it; an instancer
// that returned before its first read made that call fail "no endpoints
// available" on every process start (report j57a F5). Register sends the
// current state before it returns (go-kit's instance.Cache does, and so
// does registry.Cache), so a one-slot channel holds it by then.
func (s *suite) firstEventHasTheSet(t *testing.T) {
	svc := s.service()
	a := s.open(t)
	inst := s.sample(svc, 1, 20001)
	s.register(t, a, inst)
	// Discovery shows it (through another Registry's instancer) before
	// the instancer under test exists.
	s.watch(t, a, svc).waitFor(t, "the registered instance", func(ev event) bool {
		_, ok := ev.byID(inst.ID)
		return ok && ev.Err == nil
	})

	b := s.open(t) // a new process: nothing of service read yet
	in, err := b.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", svc, err)
	}
	t.Cleanup(func() { s.bounded(t, "instancer Stop", in.Stop) })
	ch := make(chan sd.Event, 1)
	in.Register(ch)
	// Read until deregistered, as sd.Instancer requires; the first event
	// was taken below already.
	stop, drained := make(chan struct{}), make(chan struct{})
	var first sd.Event
	got := false
	select {
	case first = <-ch:
		got = true
	default:
	}
	go func() {
		defer close(drained)
		for {
			select {
			case <-ch:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(func() {
		in.Deregister(ch)
		close(stop)
		<-drained
	})
	switch _, ok := ByID(first, inst.ID); {
	case !got:
		t.Fatal("Register right after Instancer returned sent no event: the instancer returned before it knew the set")
	case first.Err != nil:
		t.Fatalf("first event carries an error: %v (instances %v)", first.Err, first.Instances)
	case !ok:
		t.Fatalf("first event lacks %s, registered before the instancer was made: %v", inst.ID, first.Instances)
	}
}
