package registrytest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// heldAcrossLeases registers an instance and holds it across three leases:
// it must never leave a watcher's set and its Registry's Status must stay
// registered throughout. A renewal that comes later than the lease (a
// ticker built from the TTL, not a fraction of it) makes the record
// expire and come back: the instance leaves every caller's set once per
// cycle while its process believes itself registered (report j48b).
func (s *suite) heldAcrossLeases(t *testing.T) {
	svc := s.service()
	r, watcher := s.open(t), s.open(t)
	w := s.watch(t, watcher, svc)
	inst := s.sample(svc, 1, 20001)
	s.register(t, r, inst)
	w.waitFor(t, "the instance", w.exactly(inst.ID))
	from := len(w.history())

	hold := 3 * s.h.Lease
	if s.h.Lease == NoLease {
		hold = noLeaseHold
	}
	deadline := time.Now().Add(hold)
	for polls := 0; time.Now().Before(deadline) && polls < 100000; polls++ {
		if st := status(t, r); st.State != registry.StateRegistered {
			t.Fatalf("Status %v into holding the registration across %s: %+v, want registered throughout", hold-time.Until(deadline).Round(time.Millisecond), hold, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, ev := range w.history()[from:] {
		if ev.Err != nil {
			continue // carries the last good set; the backend may not have answered
		}
		if _, ok := ev.byID(inst.ID); !ok {
			t.Fatalf("event %d while the registration was held: set %v lacks %s; a record renewed later than its %s lease expires and comes back",
				from+i, ev.ids(), inst.ID, s.h.Lease)
		}
	}
	// Still there at the end, and withdrawn on request.
	w.waitFor(t, "the instance after the hold", w.exactly(inst.ID))
	s.deregister(t, r, inst)
	w.waitFor(t, "no instance", w.exactly())
}

// concurrentCalls makes every call of a Registry at once from several
// goroutines, as a process does (each /readyz request reads Status while
// the registrar renews and clients open instancers); under -race a field
// written without its lock fails here. Each goroutine's instance must end
// withdrawn.
func (s *suite) concurrentCalls(t *testing.T) {
	svc := s.service()
	r, watcher := s.open(t), s.open(t)
	sr, ok := r.(registry.StatusReporter)
	if !ok {
		t.Fatalf("%T does not implement registry.StatusReporter", r)
	}
	w := s.watch(t, watcher, svc)
	const workers, rounds = 4, 3
	ctx := s.ctx(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds*4)
	// Every goroutine starts at once: against a fast backend, goroutines
	// started one by one would each finish before the next began, and
	// -race would see no two calls overlap.
	start := make(chan struct{})
	for n := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			inst := s.sample(svc, n+1, 20001+n)
			for range rounds {
				if err := r.Register(ctx, inst); err != nil {
					errs <- fmt.Errorf("Register %s: %w", inst.ID, err)
					return
				}
				_ = sr.Status()
				in, err := r.Instancer(ctx, svc)
				if err != nil {
					errs <- fmt.Errorf("Instancer: %w", err)
					return
				}
				_ = sr.Status()
				in.Stop()
				if err := r.Deregister(ctx, inst); err != nil {
					errs <- fmt.Errorf("Deregister %s: %w", inst.ID, err)
					return
				}
			}
		}()
	}
	// Status from another goroutine all along, as /readyz reads it.
	stop := make(chan struct{})
	statusDone := make(chan struct{})
	go func() {
		defer close(statusDone)
		<-start
		for {
			_ = sr.Status()
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	close(start)
	s.bounded(t, "concurrent Register, Instancer, Stop, Deregister and Status", wg.Wait)
	close(stop)
	<-statusDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	w.waitFor(t, "no instance once every goroutine withdrew its own", w.exactly())
}
