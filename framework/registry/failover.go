package registry

import (
	"errors"
	"sync"

	"github.com/go-kit/kit/sd"
)

// Failover is an sd.Instancer over several sources in order of preference
// (the local datacenter or region first): it publishes the set of the
// first source that has at least one instance, and so fails over to the
// next when the local one has none and back as soon as it has one again.
// Consul's WithFailover builds one over an instancer per datacenter; with
// etcd, one per region's prefix or cluster.
//
// A source's event with an error and its last good set counts as that
// set (the error is passed on with it): a registry that cannot be read
// is no reason to send traffic to another region. When no source has an
// instance, the event is empty and carries every source's error.
//
// Discovery cannot see instances that are listed but dead (crashed or
// hung, their records not yet expired); a client can, and Spill has the
// Failover publish the next source's instances beside them
// (failover_spill.go).
type Failover struct {
	*Cache
	srcs []sd.Instancer
	chs  []chan sd.Event

	pub    sync.Mutex
	mu     sync.Mutex
	latest []*sd.Event // nil until the source's first event

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	hookMu   sync.Mutex
	stopped  bool
	onStop   []func()
	onSwitch []func(from, to int)

	// Under pub: the source last published, and whether any was.
	published     int
	publishedOnce bool

	// Spilling (failover_spill.go). The request is under mu, the
	// source last spilled to (-1: none) under pub.
	spill     spillReq
	spilledTo int
	onSpill   []func(active, to int) // under hookMu
}

var _ sd.Instancer = (*Failover)(nil)

// NewFailover follows srcs, most preferred first, and takes ownership of
// them: Stop stops them too.
func NewFailover(srcs ...sd.Instancer) *Failover {
	f := &Failover{Cache: NewCache(), srcs: srcs, latest: make([]*sd.Event, len(srcs)), stop: make(chan struct{}), published: -1, spilledTo: -1}
	// A source with a set sends it at once on Register: one slot holds
	// it, and the first pick is published before NewFailover returns, so
	// a subscriber registered right after gets it at once, as from any
	// other instancer. Later events wait in the slot for the follower.
	for _, src := range srcs {
		ch := make(chan sd.Event, 1)
		f.chs = append(f.chs, ch)
		src.Register(ch)
	}
	for i, ch := range f.chs {
		select {
		case ev := <-ch:
			f.latest[i] = &ev
		default: // no set yet: the follower takes the first
		}
	}
	f.pub.Lock()
	f.publishPub()
	f.pub.Unlock()
	for i, ch := range f.chs {
		f.wg.Add(1)
		go f.follow(i, ch) // owned by f: ends at Stop
	}
	return f
}

func (f *Failover) follow(i int, ch chan sd.Event) {
	defer f.wg.Done()
	for {
		select {
		case ev := <-ch:
			// pub keeps picks and publications in one order; mu alone
			// guards latest, so Active never waits for a subscriber.
			f.pub.Lock()
			f.mu.Lock()
			f.latest[i] = &ev
			f.mu.Unlock()
			f.publishPub()
			f.pub.Unlock()
		case <-f.stop:
			return
		}
	}
}

// publishPub publishes the current pick (with the spill, if any) and
// tells the hooks what changed. pub is held.
func (f *Failover) publishPub() {
	f.mu.Lock()
	out, active, ok := f.pickLocked()
	spillTo := -1
	if ok {
		out, spillTo = f.spillLocked(out, active)
	}
	f.mu.Unlock()
	if !ok {
		return
	}
	f.Update(out)
	f.hookMu.Lock()
	switchHooks, spillHooks := f.onSwitch, f.onSpill
	f.hookMu.Unlock()
	// A spill that ends is told before a switch, one that starts after,
	// so a hook that keeps one state per source ends on the right one.
	spillChanged := spillTo != f.spilledTo
	if spillChanged && f.spilledTo >= 0 {
		for _, fn := range spillHooks {
			fn(active, -1)
		}
	}
	f.spilledTo = spillTo
	if active != f.published || !f.publishedOnce {
		from := f.published
		f.published, f.publishedOnce = active, true
		for _, fn := range switchHooks {
			fn(from, active)
		}
	}
	if spillChanged && spillTo >= 0 {
		for _, fn := range spillHooks {
			fn(active, spillTo)
		}
	}
}

// pickLocked returns the event to publish and the index of the source it
// is from (-1: none has an instance); false while a source preferred to
// every one with an instance has not reported yet. An empty local set
// published before the next region's first listing was a set with no
// instance at all: `warren ls` printed "(no instances)" and a client's
// first calls failed while the other region served (report j48d).
func (f *Failover) pickLocked() (sd.Event, int, bool) {
	var errs []error
	for i, ev := range f.latest {
		if ev == nil {
			return sd.Event{}, -1, false // wait for it: it may have instances
		}
		if len(ev.Instances) > 0 {
			return *ev, i, true
		}
		if ev.Err != nil {
			errs = append(errs, ev.Err)
		}
	}
	return sd.Event{Err: errors.Join(errs...)}, -1, true
}

// Active is the index of the source whose set is published now, or -1
// when none has an instance (or none is published yet).
func (f *Failover) Active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, i, _ := f.pickLocked()
	return i
}

// OnSwitch has fn called with the source published before and after
// (-1: none with an instance) each time the published source changes,
// the first publication included (from -1); if something is published
// already, fn hears it at once, as a switch from -1. Registries log the
// failover and the return with it. fn runs with the publication order
// held: it must be quick and must not call the Failover's methods other
// than Active.
func (f *Failover) OnSwitch(fn func(from, to int)) {
	f.pub.Lock()
	defer f.pub.Unlock()
	f.hookMu.Lock()
	f.onSwitch = append(f.onSwitch, fn)
	f.hookMu.Unlock()
	if f.publishedOnce {
		fn(-1, f.published)
	}
}

// Stop unsubscribes from every source and stops them. Idempotent.
func (f *Failover) Stop() {
	f.once.Do(func() {
		// Deregister while the readers still read: sends are synchronous.
		for i, src := range f.srcs {
			src.Deregister(f.chs[i])
		}
		close(f.stop)
		f.wg.Wait()
		for _, src := range f.srcs {
			src.Stop()
		}
		f.hookMu.Lock()
		f.stopped = true
		hooks := f.onStop
		f.onStop = nil
		f.hookMu.Unlock()
		for _, fn := range hooks {
			fn()
		}
	})
}

// OnStop has fn called once Stop has stopped every source, or at once if
// it already has. A registry that hands out a Failover uses it to forget
// the Failover its Close would otherwise stop. fn runs on the goroutine
// that called Stop and must not call Stop.
func (f *Failover) OnStop(fn func()) {
	f.hookMu.Lock()
	if !f.stopped {
		f.onStop = append(f.onStop, fn)
		f.hookMu.Unlock()
		return
	}
	f.hookMu.Unlock()
	fn()
}

// OpenFailover opens n sources with open(0) (most preferred) to
// open(n-1) and follows them with NewFailover. If one fails to open, the
// ones already open are stopped and its error is returned.
func OpenFailover(n int, open func(i int) (sd.Instancer, error)) (*Failover, error) {
	var srcs []sd.Instancer
	for i := range n {
		src, err := open(i)
		if err != nil {
			for _, s := range srcs {
				s.Stop()
			}
			return nil, err
		}
		srcs = append(srcs, src)
	}
	return NewFailover(srcs...), nil
}

// Failovers holds the Failovers a Registry handed out and their callers
// have not stopped, so its Close stops them (their readers and sources).
// The zero value is ready to use.
type Failovers struct {
	mu      sync.Mutex
	stopped bool
	set     map[*Failover]struct{}
}

// Track holds f until it is stopped. After StopAll it stops f and returns
// false: the Registry is closed.
func (s *Failovers) Track(f *Failover) bool {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		f.Stop()
		return false
	}
	if s.set == nil {
		s.set = map[*Failover]struct{}{}
	}
	s.set[f] = struct{}{}
	s.mu.Unlock()
	f.OnStop(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.set, f)
	})
	return true
}

// Len is how many are held.
func (s *Failovers) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.set)
}

// StopAll stops every Failover held, and any tracked after. Idempotent.
func (s *Failovers) StopAll() {
	s.mu.Lock()
	s.stopped = true
	set := s.set
	s.set = nil
	s.mu.Unlock()
	for f := range set {
		f.Stop()
	}
}
