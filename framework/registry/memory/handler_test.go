package memory

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// handlerCase is a subscriber whose handler, on its second event, waits
// until the next change is being sent to it (its instancer's delta probe,
// which the cache serves before go-kit subscribers, has that change) and
// then calls act — so act runs while a Register waits for this very
// handler, every time. Meanwhile another Registry registers 50 instances.
type handlerCase struct {
	in     sd.Instancer
	ch     chan sd.Event // unbuffered, as go-kit allows
	probe  chan registry.Delta
	insts  []registry.Instance
	acted  chan struct{} // closed when act returned
	late   chan sd.Event // events ch got after act returned
	done   chan struct{} // closed to end the handler
	ended  chan struct{} // closed when the handler ended
	regErr chan error    // the registering goroutine's outcome
}

// runHandlerCase starts the handler and the registrations and fails the
// test unless act and all 50 Registers return within 20 s. No deferred
// Close or Stop: after a hang they would hang the test too; the
// goroutines of a failed run are left to the test binary.
func runHandlerCase(t *testing.T, srv *Server, in sd.Instancer, act func(ch chan<- sd.Event)) *handlerCase {
	t.Helper()
	h := &handlerCase{
		in: in, ch: make(chan sd.Event), probe: make(chan registry.Delta, 64),
		acted: make(chan struct{}), late: make(chan sd.Event, 64),
		done: make(chan struct{}), ended: make(chan struct{}), regErr: make(chan error, 1),
	}
	for i := range 50 {
		h.insts = append(h.insts, registry.Instance{ID: fmt.Sprintf("i%d", i), Name: "svc", Endpoints: []string{fmt.Sprintf("http://127.0.0.1:%d", 1000+i)}})
	}
	in.(registry.DeltaInstancer).RegisterDelta(h.probe)
	go func() { // the handler; ends when done is closed
		defer close(h.ended)
		n := 0
		for {
			select {
			case ev := <-h.ch:
				n++
				select {
				case <-h.acted:
					h.late <- ev
					continue
				default:
				}
				if n == 2 {
					// The second change (i1) is being sent once the probe has it.
					if !h.waitProbe(h.insts[1].String()) {
						t.Error("the probe never got the second change")
					}
					act(h.ch)
					close(h.acted)
				}
			case <-h.done:
				return
			}
		}
	}()
	in.Register(h.ch)
	reg := srv.Registry()
	go func() { // ends when the Registers return (or the test binary's timeout)
		for _, inst := range h.insts {
			if err := reg.Register(context.Background(), inst); err != nil {
				h.regErr <- err
				return
			}
		}
		h.regErr <- nil
	}()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	select {
	case <-h.acted:
	case <-deadline.C:
		t.Fatal("the call made from the subscriber's handler did not return within 20 s: hung")
	}
	select {
	case err := <-h.regErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-deadline.C:
		t.Fatal("50 Registers did not return within 20 s after the handler's call: hung")
	}
	return h
}

// waitProbe reads the probe until a delta adds s; false after 5 s.
func (h *handlerCase) waitProbe(s string) bool {
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case d := <-h.probe:
			if slices.Contains(d.Added, s) {
				return true
			}
		case <-timeout.C:
			return false
		}
	}
}

// end stops the handler and fails if ch got anything after the call.
func (h *handlerCase) end(t *testing.T, after string) {
	t.Helper()
	close(h.done)
	<-h.ended
	select {
	case ev := <-h.late:
		t.Errorf("the subscriber got %d instances after %s returned", len(ev.Instances), after)
	default:
	}
}

// A subscriber that stops its own instancer from its handler while a
// change waits for it: Stop returns, the waiting Register goes on, and
// the subscriber gets nothing more. Stop used to wait for the cache's
// lock, held by the send waiting for this handler: both hung, and every
// Register of the server after them (review s58-r2 F2).
func TestInstancer_StopFromTheSubscriberLoopReturns(t *testing.T) {
	srv := NewServer()
	r := srv.Registry()
	in, err := r.Instancer(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	h := runHandlerCase(t, srv, in, func(chan<- sd.Event) { in.Stop() })
	h.end(t, "Stop")
	in.Stop()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// The same with Deregister of the handler's own channel.
func TestInstancer_DeregisterFromTheSubscriberLoopReturns(t *testing.T) {
	srv := NewServer()
	r := srv.Registry()
	in, err := r.Instancer(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	h := runHandlerCase(t, srv, in, in.Deregister)
	h.end(t, "Deregister")
	in.Stop()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// A handler that stops another Registry's instancer of the same service
// (whose subscriber keeps reading): as on etcd, where each instancer has
// a watch of its own, it returns. The instancers of a service used to
// share one cache, whose lock the send waiting for this handler held.
func TestInstancer_StopOfAnotherInstancerFromAHandlerReturns(t *testing.T) {
	srv := NewServer()
	r, other := srv.Registry(), srv.Registry()
	in, err := r.Instancer(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := other.Instancer(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	och, odone, oended := make(chan sd.Event), make(chan struct{}), make(chan struct{})
	var theirLast []string
	go func() { // their subscriber; ends when odone is closed
		defer close(oended)
		for {
			select {
			case ev := <-och:
				theirLast = ev.Instances
			case <-odone:
				return
			}
		}
	}()
	theirs.Register(och)
	h := runHandlerCase(t, srv, in, func(chan<- sd.Event) { theirs.Stop() })
	close(odone)
	<-oended
	// Stopped while the second change (i1) was being sent: the third,
	// made after, must not reach it.
	if len(theirLast) > 2 {
		t.Errorf("the stopped instancer's subscriber got %d instances, want at most 2 (i0, i1)", len(theirLast))
	}
	in.Deregister(h.ch)
	close(h.done)
	<-h.ended
	in.Stop()
	for _, c := range []*Registry{r, other} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
