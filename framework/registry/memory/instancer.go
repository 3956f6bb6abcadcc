package memory

import (
	"slices"
	"sync"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// instancer is one caller's view of a service's cache on the Server. The
// instancers of a service share that cache, so each remembers the
// channels it registered there: its Stop deregisters those, and only
// those, as stopping an etcd instancer ends its own watch and no other.
type instancer struct {
	cache *registry.Cache
	reg   *Registry // whose Close stops it

	mu      sync.Mutex
	stopped bool
	last    sd.Event // the state at Stop, for a Register after it
	subs    map[chan<- sd.Event]struct{}
	deltas  map[chan<- registry.Delta]struct{}
	once    sync.Once
}

var (
	_ sd.Instancer            = (*instancer)(nil)
	_ registry.DeltaInstancer = (*instancer)(nil)
)

func newInstancer(c *registry.Cache, r *Registry) *instancer {
	return &instancer{
		cache:  c,
		reg:    r,
		subs:   map[chan<- sd.Event]struct{}{},
		deltas: map[chan<- registry.Delta]struct{}{},
	}
}

// Register implements sd.Instancer: ch gets the current set at once and
// every change until Deregister or Stop. After Stop it gets the set as it
// was at Stop, and nothing more, as a stopped etcd instancer's subscriber
// does.
func (in *instancer) Register(ch chan<- sd.Event) {
	in.mu.Lock()
	if in.stopped {
		ev := sd.Event{Instances: slices.Clone(in.last.Instances), Err: in.last.Err}
		in.mu.Unlock()
		ch <- ev
		return
	}
	defer in.mu.Unlock()
	// Under mu: a Stop running meanwhile would miss a channel added to
	// the cache after it took the list.
	in.subs[ch] = struct{}{}
	in.cache.Register(ch)
}

// Deregister implements sd.Instancer.
func (in *instancer) Deregister(ch chan<- sd.Event) {
	in.mu.Lock()
	_, mine := in.subs[ch]
	delete(in.subs, ch)
	in.mu.Unlock()
	if mine { // not another instancer's subscription of the same channel
		in.cache.Deregister(ch)
	}
}

// RegisterDelta implements registry.DeltaInstancer, with Register's rules.
func (in *instancer) RegisterDelta(ch chan<- registry.Delta) {
	in.mu.Lock()
	if in.stopped {
		d := registry.Delta{Added: slices.Clone(in.last.Instances), Err: in.last.Err}
		in.mu.Unlock()
		ch <- d
		return
	}
	defer in.mu.Unlock()
	in.deltas[ch] = struct{}{}
	in.cache.RegisterDelta(ch)
}

// DeregisterDelta implements registry.DeltaInstancer.
func (in *instancer) DeregisterDelta(ch chan<- registry.Delta) {
	in.mu.Lock()
	_, mine := in.deltas[ch]
	delete(in.deltas, ch)
	in.mu.Unlock()
	if mine {
		in.cache.DeregisterDelta(ch)
	}
}

// State returns the current set; after Stop, the set at Stop.
func (in *instancer) State() sd.Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopped {
		return sd.Event{Instances: slices.Clone(in.last.Instances), Err: in.last.Err}
	}
	return in.cache.State()
}

// Stop ends every subscription made through this instancer; the others
// of the service go on. Subscribers keep the last set they got. Like
// Deregister, it waits for a change being sent to a subscriber to be
// read. It is idempotent.
func (in *instancer) Stop() {
	in.once.Do(func() {
		in.mu.Lock()
		in.stopped = true
		in.last = in.cache.State()
		subs, deltas := in.subs, in.deltas
		in.subs, in.deltas = nil, nil
		in.mu.Unlock()
		for ch := range subs {
			in.cache.Deregister(ch)
		}
		for ch := range deltas {
			in.cache.DeregisterDelta(ch)
		}
		in.reg.forget(in)
	})
}
