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
// channel until it has called Deregister.
type Cache struct {
	mu     sync.Mutex
	set    map[string]struct{}
	err    error
	known  bool
	sorted []string // the set, sorted; nil when stale
	subs   map[chan<- sd.Event]struct{}
	deltas map[chan<- Delta]struct{}
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{set: map[string]struct{}{}, subs: map[chan<- sd.Event]struct{}{}, deltas: map[chan<- Delta]struct{}{}}
}

// Update replaces the set and notifies subscribers when it changed. An
// event with Err keeps the error and whatever instances it carries:
// backends pass the last good set with the error.
func (c *Cache) Update(ev sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.set, c.err, c.known = next, ev.Err, true
	c.sorted = nil
	c.notifyLocked(Delta{Added: added, Removed: removed, Err: ev.Err})
}

// Apply changes the set by one delta (instances already present or
// absent are ignored) and sets the error in force. It costs O(len(added)
// + len(removed)) plus O(N) per go-kit subscriber.
func (c *Cache) Apply(added, removed []string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
	c.err, c.known = err, true
	if len(d.Added) > 0 || len(d.Removed) > 0 {
		c.sorted = nil
	}
	c.notifyLocked(d)
}

func (c *Cache) notifyLocked(d Delta) {
	for ch := range c.deltas {
		ch <- d
	}
	if len(c.subs) == 0 {
		return
	}
	ev := c.eventLocked()
	for ch := range c.subs {
		ch <- sd.Event{Instances: slices.Clone(ev.Instances), Err: ev.Err}
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
// at once (if any state is known yet) and every change after.
func (c *Cache) Register(ch chan<- sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[ch] = struct{}{}
	if c.known {
		ev := c.eventLocked()
		ch <- sd.Event{Instances: slices.Clone(ev.Instances), Err: ev.Err}
	}
}

// Deregister implements sd.Instancer.
func (c *Cache) Deregister(ch chan<- sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, ch)
}

// RegisterDelta implements DeltaInstancer.
func (c *Cache) RegisterDelta(ch chan<- Delta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deltas[ch] = struct{}{}
	if c.known {
		all := make([]string, 0, len(c.set))
		for s := range c.set {
			all = append(all, s)
		}
		ch <- Delta{Added: all, Err: c.err}
	}
}

// DeregisterDelta implements DeltaInstancer.
func (c *Cache) DeregisterDelta(ch chan<- Delta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.deltas, ch)
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
