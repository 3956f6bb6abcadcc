package registrytest

import (
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
)

// stopFromItsHandler: a subscriber may end its subscription from inside
// its own handler — Deregister of its channel, or Stop of the instancer —
// while the instancer waits to send it the next change (sends are
// synchronous, as in go-kit), and the call returns. Before, the
// instancer's Stop waited for its watch loop, which waited for the
// handler to read the change it was sending: the handler, and the
// instancer with it, hung for good (report s58-review2 F2 on memory;
// etcd, Consul, ZooKeeper and Kubernetes the same).
func (s *suite) stopFromItsHandler(t *testing.T) {
	for _, c := range []struct {
		name string
		end  func(sd.Instancer, chan<- sd.Event)
	}{
		{"Stop", func(in sd.Instancer, _ chan<- sd.Event) { in.Stop() }},
		{"Deregister", func(in sd.Instancer, ch chan<- sd.Event) { in.Deregister(ch) }},
	} {
		t.Run(c.name, func(t *testing.T) { s.endFromHandler(t, c.name, c.end) })
	}
}

func (s *suite) endFromHandler(t *testing.T, what string, end func(sd.Instancer, chan<- sd.Event)) {
	svc := s.service()
	a, w := s.open(t), s.open(t)
	in, err := w.Instancer(s.ctx(t), svc)
	if err != nil {
		t.Fatalf("Instancer(%s): %v", svc, err)
	}
	t.Cleanup(func() { s.bounded(t, "instancer Stop", in.Stop) })
	live := s.watch(t, a, svc)
	one, two := s.sample(svc, 1, 20001), s.sample(svc, 2, 20002)

	ch := make(chan sd.Event) // unbuffered: a change waits for the handler
	sawOne, goOn, returned := make(chan struct{}), make(chan struct{}), make(chan struct{})
	quit := make(chan struct{})
	t.Cleanup(func() { close(quit) })
	go func() { // the subscriber; a handler that hangs stays, the test fails
		for {
			select {
			case ev := <-ch:
				if !Has(one.ID)(ev) {
					continue
				}
				close(sawOne)
				select { // hold the handler while the next change is made
				case <-goOn:
				case <-quit:
					return
				}
				end(in, ch)
				close(returned)
				for { // a change sent before the end returned may still come
					select {
					case <-ch:
					case <-quit:
						return
					}
				}
			case <-quit:
				return
			}
		}
	}()
	in.Register(ch)
	s.register(t, a, one)
	select {
	case <-sawOne:
	case <-time.After(s.h.Timeout):
		t.Fatalf("the subscriber did not see %s within %s", one.ID, s.h.Timeout)
	}
	// The next change, whose send to this instancer then waits for the
	// held handler. Made aside: a backend may send before Register
	// returns (memory does).
	registered := make(chan error, 1)
	go func() { registered <- a.Register(s.ctx(t), two) }()
	// Time for the change to reach the instancer's send; the case passes
	// without it, but may then end the subscription before the send.
	time.Sleep(200 * time.Millisecond)
	close(goOn)
	select {
	case <-returned:
	case <-time.After(s.h.Timeout):
		msg := what + " called from the subscriber's handler"
		s.hung.Store(&msg)
		t.Fatalf("%s while a change waited for it did not return within %s", msg, s.h.Timeout)
	}
	select {
	case err := <-registered:
		if err != nil {
			t.Fatalf("Register %s: %v", two.ID, err)
		}
	case <-time.After(s.h.Timeout):
		t.Fatalf("Register %s did not return within %s after the handler's %s", two.ID, s.h.Timeout, what)
	}
	// The registry goes on: the other Registry's instancer sees the change.
	live.waitFor(t, one.ID+" and "+two.ID, live.exactly(one.ID, two.ID))
}
