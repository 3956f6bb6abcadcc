package registry

import (
	"context"
	"slices"
	"sync"

	"github.com/go-kit/kit/sd"
)

// Delta is one change of an instance set: the instance strings that
// joined and those that left, and the discovery error now in force (nil
// once reads work again; the set is then the last good one).
type Delta struct {
	Added, Removed []string
	Err            error
}

// DeltaInstancer is implemented by instancers that can hand a subscriber
// each change instead of the whole set, so a change costs its own size,
// not the set's. The endpointer uses it when the instancer has it, and
// trusts its instance strings to parse (ParseInstance): Warren's backends
// validate every record before they serve it.
type DeltaInstancer interface {
	// RegisterDelta subscribes ch: it gets the current set at once (as
	// Added, if any state is known yet) and every change after.
	RegisterDelta(ch chan<- Delta)
	// DeregisterDelta ends the subscription.
	DeregisterDelta(ch chan<- Delta)
}

// Cache holds the current instance set of one service and implements the
// registration half of go-kit's sd.Instancer: a registered channel gets the
// current set at once and every change after. Backends embed it and call
// Update (a whole set) or Apply (a change); go-kit keeps its own copy in an
// internal package we cannot import.
//
// It also implements DeltaInstancer: an Apply of k changes costs O(k) for
// delta subscribers; only go-kit subscribers (sd.Event carries the whole
// set) cost O(N) each, and the sorted set is built once per change, when
// one of them is registered.
//
// Sends are synchronous, as in go-kit: a subscriber must keep reading its
// channel until it has called Deregister. It may call Deregister, or
// Stop, from its handler while a change waits for it: both end that send
// first, then wait for the rest of the change to be sent. It must not
// Register a channel from there (Register waits for the change to be
// sent, which waits for the handler).
type Cache struct {
	// mu orders the changes: it is held while a change is sent.
	mu     sync.Mutex
	set    map[string]struct{}
	err    error
	known  bool
	sorted []string // the set, sorted; nil when stale
	// The subscriptions, written under mu and lookup; read under either.
	// Deregister finds one under lookup alone, never held while sending,
	// to end a send that waits for its caller.
	lookup sync.Mutex
	subs   map[chan<- sd.Event]*subscription
	deltas map[chan<- Delta]*subscription

	stop     chan struct{} // closed by Stop
	stopOnce sync.Once
}

// subscription is one registered channel; done ends a send waiting for
// it.
type subscription struct {
	done chan struct{}
	once sync.Once
}

func newSubscription() *subscription { return &subscription{done: make(chan struct{})} }

func (s *subscription) end() { s.once.Do(func() { close(s.done) }) }

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{
		set:  map[string]struct{}{},
		subs: map[chan<- sd.Event]*subscription{}, deltas: map[chan<- Delta]*subscription{},
		stop: make(chan struct{}),
	}
}

// Update replaces the set and notifies subscribers when it changed. An
// event with Err keeps the error and whatever instances it carries:
// backends pass the last good set with the error.
func (c *Cache) Update(ev sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped() {
		return
	}
	next := make(map[string]struct{}, len(ev.Instances))
	var added []string
	if len(c.set) == 0 {
		added = make([]string, 0, len(ev.Instances)) // every one is new
	}
	for _, s := range ev.Instances {
		// A duplicate leaves the size as it was: one hash, not a lookup
		// and then an insert, per instance of a full set.
		n := len(next)
		if next[s] = struct{}{}; len(next) == n {
			continue
		}
		if _, ok := c.set[s]; !ok {
			added = append(added, s)
		}
	}
	var removed []string
	for s := range c.set {
		if _, ok := next[s]; !ok {
			removed = append(removed, s)
		}
	}
	if c.known && len(added) == 0 && len(removed) == 0 && sameErr(c.err, ev.Err) {
		return
	}
	prevSet, prevErr, prevKnown, prevSorted := c.set, c.err, c.known, c.sorted
	c.set, c.err, c.known = next, ev.Err, true
	c.sorted = nil
	if c.notifyLocked(Delta{Added: added, Removed: removed, Err: ev.Err}) {
		c.set, c.err, c.known, c.sorted = prevSet, prevErr, prevKnown, prevSorted
	}
}

// Apply changes the set by one delta (instances already present or
// absent are ignored) and sets the error in force. It costs O(len(added)
// + len(removed)) plus O(N) per go-kit subscriber.
func (c *Cache) Apply(added, removed []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped() {
		return
	}
	d := Delta{Err: err}
	for _, s := range removed {
		if _, ok := c.set[s]; ok {
			delete(c.set, s)
			d.Removed = append(d.Removed, s)
		}
	}
	for _, s := range added {
		if _, ok := c.set[s]; !ok {
			c.set[s] = struct{}{}
			d.Added = append(d.Added, s)
		}
	}
	if c.known && len(d.Added) == 0 && len(d.Removed) == 0 && sameErr(c.err, err) {
		return
	}
	prevErr, prevKnown, prevSorted := c.err, c.known, c.sorted
	c.err, c.known = err, true
	if len(d.Added) > 0 || len(d.Removed) > 0 {
		c.sorted = nil
	}
	if c.notifyLocked(d) {
		for _, s := range d.Added {
			delete(c.set, s)
		}
		for _, s := range d.Removed {
			c.set[s] = struct{}{}
		}
		c.err, c.known, c.sorted = prevErr, prevKnown, prevSorted
	}
}

// notifyLocked sends a change to every subscriber, and reports whether
// Stop abandoned it before any got it: the caller then puts the state
// back, so that State after Stop is the newest one a subscriber got.
func (c *Cache) notifyLocked(d Delta) (abandoned bool) {
	tried, sent := false, false
	for ch, sub := range c.deltas {
		tried = true
		sent = send(ch, d, sub, c.stop) || sent
	}
	if len(c.subs) > 0 {
		ev := c.eventLocked()
		for ch, sub := range c.subs {
			tried = true
			sent = send(ch, sd.Event{Instances: slices.Clone(ev.Instances), Err: ev.Err}, sub, c.stop) || sent
		}
	}
	return tried && !sent && c.stopped()
}

// send hands v to ch unless the subscription or the cache ends first
// (whoever ends it may be ch's reader, in its handler); it reports
// whether ch got v.
func send[T any](ch chan<- T, v T, sub *subscription, stop <-chan struct{}) bool {
	select {
	case <-sub.done:
		return false
	case <-stop:
		return false
	default:
	}
	select {
	case ch <- v:
		return true
	case <-sub.done:
		return false
	case <-stop:
		return false
	}
}

func (c *Cache) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// eventLocked returns the state as a go-kit event; its slice is shared.
func (c *Cache) eventLocked() sd.Event {
	if c.sorted == nil {
		c.sorted = make([]string, 0, len(c.set))
		for s := range c.set {
			c.sorted = append(c.sorted, s)
		}
		slices.Sort(c.sorted)
	}
	return sd.Event{Instances: c.sorted, Err: c.err}
}

// State returns a copy of the current event, instances sorted.
func (c *Cache) State() sd.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev := c.eventLocked()
	return sd.Event{Instances: slices.Clone(ev.Instances), Err: ev.Err}
}

// Len returns the number of instances in the set.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.set)
}

// Register implements sd.Instancer. The channel receives the current state
// at once (if any state is known yet) and every change after. After Stop
// it receives the state once and is not subscribed.
func (c *Cache) Register(ch chan<- sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, stop := subscribeLocked(c, c.subs, ch)
	if c.known {
		ev := c.eventLocked()
		// Stop (or Deregister) from another goroutine ends the wait.
		send(ch, sd.Event{Instances: slices.Clone(ev.Instances), Err: ev.Err}, sub, stop)
	}
}

// Deregister implements sd.Instancer. Called from ch's handler while a
// change waits for it, it ends that send (see Cache).
func (c *Cache) Deregister(ch chan<- sd.Event) { unsubscribe(c, c.subs, ch) }

// RegisterDelta implements DeltaInstancer, with Register's rules.
func (c *Cache) RegisterDelta(ch chan<- Delta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sub, stop := subscribeLocked(c, c.deltas, ch)
	if c.known {
		all := make([]string, 0, len(c.set))
		for s := range c.set {
			all = append(all, s)
		}
		send(ch, Delta{Added: all, Err: c.err}, sub, stop)
	}
}

// DeregisterDelta implements DeltaInstancer, with Deregister's rules.
func (c *Cache) DeregisterDelta(ch chan<- Delta) { unsubscribe(c, c.deltas, ch) }

// subscribeLocked adds ch to subs (c.subs or c.deltas; c.mu held) and
// returns its subscription and what ends a send of the current state to
// it: after Stop ch is not added and gets the state once, with nothing to
// end that send but its own Deregister.
func subscribeLocked[T any](c *Cache, subs map[chan<- T]*subscription, ch chan<- T) (*subscription, <-chan struct{}) {
	sub := newSubscription()
	if c.stopped() {
		return sub, nil
	}
	c.lookup.Lock()
	subs[ch] = sub
	c.lookup.Unlock()
	return sub, c.stop
}

// unsubscribe ends ch's subscription in subs: first a send waiting for
// it (the caller may be ch's reader, in its handler), then, once no
// change is being sent, the entry, so that ch gets nothing more.
func unsubscribe[T any](c *Cache, subs map[chan<- T]*subscription, ch chan<- T) {
	c.lookup.Lock()
	sub := subs[ch]
	c.lookup.Unlock()
	if sub == nil {
		return
	}
	sub.end()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookup.Lock()
	if subs[ch] == sub { // not a later Register's
		delete(subs, ch)
	}
	c.lookup.Unlock()
}

// Stop ends every subscription, as an instancer's Stop does: a change
// waiting for a subscriber is not sent (the caller may be that
// subscriber, in its handler), later Updates and Applies change nothing,
// State stays the newest state a subscriber got, and Register sends it
// once without subscribing. It returns once no change is being sent, and
// is idempotent.
func (c *Cache) Stop() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lookup.Lock()
	defer c.lookup.Unlock()
	clear(c.subs)
	clear(c.deltas)
}

func sameErr(a, b error) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Error() == b.Error())
}

// Follow subscribes to ins and calls f with each event, from the current
// state on, until f returns true or ctx ends (then it returns ctx's
// error). The subscription is undone before it returns, with the channel
// drained meanwhile, as synchronous senders (Cache, go-kit's) require. It
// does not Stop ins.
func Follow(ctx context.Context, ins sd.Instancer, f func(sd.Event) (stop bool)) error {
	ch := make(chan sd.Event, 1)
	ins.Register(ch)
	defer func() {
		go func() { // drain while Deregister runs
			for range ch {
			}
		}()
		ins.Deregister(ch)
		close(ch)
	}()
	for {
		select {
		case ev := <-ch:
			if f(ev) {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
