package registry

import (
	"context"
	"slices"
	"sync"

	"github.com/go-kit/kit/sd"
)

// Cache holds the current instance set of one service and implements the
// registration half of go-kit's sd.Instancer: a registered channel gets the
// current set at once and every change after. Backends embed it and call
// Update; go-kit keeps its own copy in an internal package we cannot import.
//
// Sends are synchronous, as in go-kit: a subscriber must keep reading its
// channel until it has called Deregister.
type Cache struct {
	mu    sync.Mutex
	state sd.Event
	set   bool
	subs  map[chan<- sd.Event]struct{}
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{subs: map[chan<- sd.Event]struct{}{}} }

// Update replaces the set (sorted copy) and notifies subscribers when it
// changed. An event with Err keeps the error and whatever instances it
// carries: backends pass the last good set with the error.
func (c *Cache) Update(ev sd.Event) {
	ev.Instances = slices.Clone(ev.Instances)
	slices.Sort(ev.Instances)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set && sameEvent(c.state, ev) {
		return
	}
	c.state, c.set = ev, true
	for ch := range c.subs {
		ch <- copyEvent(ev)
	}
}

// State returns a copy of the current event.
func (c *Cache) State() sd.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyEvent(c.state)
}

// Register implements sd.Instancer. The channel receives the current state
// at once (if any state is known yet) and every change after.
func (c *Cache) Register(ch chan<- sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[ch] = struct{}{}
	if c.set {
		ch <- copyEvent(c.state)
	}
}

// Deregister implements sd.Instancer.
func (c *Cache) Deregister(ch chan<- sd.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.subs, ch)
}

func copyEvent(ev sd.Event) sd.Event {
	return sd.Event{Instances: slices.Clone(ev.Instances), Err: ev.Err}
}

func sameEvent(a, b sd.Event) bool {
	if (a.Err == nil) != (b.Err == nil) || (a.Err != nil && a.Err.Error() != b.Err.Error()) {
		return false
	}
	return slices.Equal(a.Instances, b.Instances)
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
