// Package endpointer turns a go-kit sd.Instancer into a live set of
// balancer.Targets, one per instance, each built once by an sd.Factory.
//
// It does what go-kit's sd.NewEndpointer does (and still implements
// sd.Endpointer), plus what a resilient client needs and go-kit's cache
// cannot give: each endpoint keeps its instance record (zone, weight,
// metadata) for the balancers; an instance that leaves discovery is closed
// only after its in-flight calls have finished instead of under them; the
// set is handed to a Balancer on every change; and callers can wait for the
// first answer from discovery instead of failing on an empty set at start.
package endpointer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// ErrClosed is returned (wrapped) by Endpoints and Wait after Close. It is
// registry.ErrClosed, Warren's one "used after Close" error.
var ErrClosed = registry.ErrClosed

// Endpointer keeps the target set of one service.
//
// It starts one goroutine, which reads the instancer's events until Close.
// Close deregisters from the instancer (which the caller still owns and must
// Stop) and retires every target; each target's closer runs once its calls
// in flight have returned.
type Endpointer struct {
	src      sd.Instancer
	factory  sd.Factory
	ifactory InstanceFactory
	bal      balancer.Balancer
	detector *outlier.Detector
	failed   func(error) bool
	logger   log.Logger

	events chan sd.Event
	deltas chan registry.Delta // used instead of events when src has deltas
	dsrc   registry.DeltaInstancer
	stop   chan struct{}
	done   chan struct{}

	ready     chan struct{}
	readyOnce sync.Once

	mu   sync.Mutex // guards byID, unbuilt, closed and failing; held by update and Close
	byID map[string]*balancer.Target
	// unbuilt holds the instances discovery lists whose build failed for
	// a reason that may pass (any but registry.ErrInvalidInstance: an
	// instance registered a moment before it listens, to a factory that
	// dials). The instancer names an instance once, so they are built
	// again on a timer (rebuild), not on its next event.
	unbuilt map[string]struct{}
	closed  bool
	failing bool // discovery's last word was an error
	epoch   balancer.TargetOption
	// discoveryErr is that error (nil while discovery answers), for
	// callers outside e.mu.
	discoveryErr atomic.Pointer[error]
	current      atomic.Pointer[[]*balancer.Target]

	closeOnce sync.Once
}

// Option configures an Endpointer.
type Option func(*Endpointer)

// WithBalancer sets the balancer that gets every new set (default none).
func WithBalancer(b balancer.Balancer) Option { return func(e *Endpointer) { e.bal = b } }

// InstanceFactory is an sd.Factory that gets the instance already parsed,
// so the string is parsed once per instance, not once here and once in
// the factory.
type InstanceFactory func(registry.Instance) (endpoint.Endpoint, io.Closer, error)

// WithInstanceFactory builds endpoints with f instead of New's sd.Factory
// (which may then be nil).
func WithInstanceFactory(f InstanceFactory) Option { return func(e *Endpointer) { e.ifactory = f } }

// WithDetector gives every target an outlier breaker from d (default none:
// no ejection).
func WithDetector(d *outlier.Detector) Option { return func(e *Endpointer) { e.detector = d } }

// WithFailure sets which call errors count against an instance's health
// (default: all).
func WithFailure(f func(error) bool) Option { return func(e *Endpointer) { e.failed = f } }

// WithLogger sets where factory and discovery errors go (default nowhere).
func WithLogger(l log.Logger) Option { return func(e *Endpointer) { e.logger = l } }

// New subscribes to src and builds targets with f. A nil src (or a nil
// pointer in it), a nil f without WithInstanceFactory, or a nil option
// panic here, naming it:
// New has no error to return (as go-kit's sd.NewEndpointer), and the nil
// would otherwise be dereferenced later, on its goroutine or the first
// instance's build.
func New(src sd.Instancer, f sd.Factory, opts ...Option) *Endpointer {
	if src == nil {
		panic("endpointer.New: nil sd.Instancer")
	}
	// A nil pointer in the interface (an instancer variable never set)
	// would panic inside Register below, after the goroutine started.
	if v := reflect.ValueOf(src); v.Kind() == reflect.Pointer && v.IsNil() {
		panic(fmt.Sprintf("endpointer.New: nil sd.Instancer (a nil %T)", src))
	}
	e := &Endpointer{
		src:     src,
		factory: f,
		logger:  log.NewNopLogger(),
		events:  make(chan sd.Event),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		byID:    map[string]*balancer.Target{},
		unbuilt: map[string]struct{}{},
		// One clock read for all the targets it will make, not one per
		// target: at 10k instances a first set spent ~1 ms reading it.
		epoch: balancer.WithEpoch(time.Now()),
	}
	for i, o := range opts {
		if o == nil {
			panic(fmt.Sprintf("endpointer.New: option %d is nil", i))
		}
		o(e)
	}
	if e.factory == nil && e.ifactory == nil {
		panic("endpointer.New: nil sd.Factory and no WithInstanceFactory")
	}
	// The goroutine must run before Register: instancers send the current
	// set synchronously from inside it.
	if ds, ok := src.(registry.DeltaInstancer); ok {
		// Changes instead of whole sets: a change costs its own size.
		e.dsrc, e.deltas = ds, make(chan registry.Delta)
		go e.receive()
		ds.RegisterDelta(e.deltas)
		return e
	}
	go e.receive()
	src.Register(e.events)
	return e
}

// Spacing of the builds of unbuilt instances: doubling from
// rebuildFirst to rebuildMax while some stay unbuilt.
const (
	rebuildFirst = time.Second
	rebuildMax   = 30 * time.Second
)

func (e *Endpointer) receive() {
	defer close(e.done)
	var timer *time.Timer
	var due <-chan time.Time // set while a rebuild is scheduled
	wait := rebuildFirst
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case ev := <-e.events:
			e.update(ev)
		case d := <-e.deltas:
			e.apply(d)
		case <-due:
			due = nil
			e.rebuild()
			wait = min(2*wait, rebuildMax)
		case <-e.stop:
			return
		}
		if due != nil {
			continue
		}
		if !e.anyUnbuilt() {
			wait = rebuildFirst
			continue
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		due = timer.C
	}
}

func (e *Endpointer) anyUnbuilt() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.unbuilt) > 0
}

// rebuild builds the unbuilt instances again and publishes those built.
// The builds run without e.mu (a factory that dials may take seconds):
// only this goroutine changes the set and unbuilt, so they are as left.
func (e *Endpointer) rebuild() {
	e.mu.Lock()
	ids := slices.Collect(maps.Keys(e.unbuilt))
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return
	}
	built := make(map[string]*balancer.Target, len(ids))
	failed := make(map[string]error)
	for _, id := range ids {
		if t, err := e.build(id); err != nil {
			failed[id] = err
		} else {
			built[id] = t
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var born []*balancer.Target
	for _, id := range ids {
		if t, ok := built[id]; ok {
			delete(e.unbuilt, id)
			e.byID[id] = t
			born = append(born, t)
			continue
		}
		delete(e.unbuilt, id)
		e.failedLocked(id, failed[id]) // kept unless invalid for good
	}
	if len(born) > 0 {
		e.publishChangeLocked(nil, born)
	}
}

// failedLocked logs a failed build of id and keeps it for rebuild unless
// the instance is invalid for good.
func (e *Endpointer) failedLocked(id string, err error) {
	if errors.Is(err, registry.ErrInvalidInstance) {
		level.Warn(e.logger).Log("msg", "skipping instance", "instance", id, "err", err)
		return
	}
	e.unbuilt[id] = struct{}{}
	level.Warn(e.logger).Log("msg", "skipping instance", "instance", id, "err", err, "retry", "later")
}

// noteDiscovery logs discovery going wrong and coming right, once each:
// the registry's instancer logs the outage in detail; what this layer
// adds is that calls go on to the last known instances. e.mu is held.
func (e *Endpointer) noteDiscovery(err error) {
	switch {
	case err != nil && !e.failing:
		level.Warn(e.logger).Log("msg", "discovery error; keeping last known instances", "instances", len(e.byID), "err", err)
	case err == nil && e.failing:
		level.Info(e.logger).Log("msg", "discovery answers again")
	}
	e.failing = err != nil
	if err != nil {
		e.discoveryErr.Store(&err)
	} else {
		e.discoveryErr.Store(nil)
	}
}

// DiscoveryErr returns the error of discovery's last answer while it is
// failing, else nil: a caller that finds no instance can say why (an
// empty set because the registry refused or cannot be reached, not
// because nothing is registered).
func (e *Endpointer) DiscoveryErr() error {
	if p := e.discoveryErr.Load(); p != nil {
		return *p
	}
	return nil
}

// apply applies one change: O(change) map work plus one copy of the
// target slice (8 bytes per instance) for the lock-free pickers.
func (e *Endpointer) apply(d registry.Delta) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.noteDiscovery(d.Err)
	if len(e.byID) == 0 && len(d.Removed) == 0 && len(d.Added) > smallChange {
		e.first(d.Added)
		e.markReady()
		return
	}
	var gone, born []*balancer.Target
	if len(d.Added) > smallChange {
		// A first set or a re-list: sized once, not grown (and rehashed)
		// insert by insert.
		born = make([]*balancer.Target, 0, len(d.Added))
		if len(e.byID) == 0 {
			e.byID = make(map[string]*balancer.Target, len(d.Added))
		}
	}
	// Joiners are built before leavers retire, as update does: a record
	// changed in place (its old string leaves as its new one joins) then
	// always has a target for its instance ID, so the instance is never
	// released in between — its breaker, its ejection and its metric
	// series stay, as they do when a call is still out on the old record.
	for _, id := range d.Added {
		if t := e.addLocked(id); t != nil {
			born = append(born, t)
		}
	}
	rejoined := rejoinedIn(d)
	for _, id := range d.Removed {
		if rejoined(id) {
			continue // left and joined in one change: kept, as update keeps it
		}
		delete(e.unbuilt, id)
		if t, ok := e.byID[id]; ok {
			delete(e.byID, id)
			t.Retire()
			gone = append(gone, t)
		}
	}
	if len(gone) > 0 || len(born) > 0 {
		e.publishChangeLocked(gone, born)
	}
	e.markReady()
}

// rejoinedIn reports whether an instance string of d.Removed is also in
// d.Added (a Cache given one string to remove and add in one Apply).
func rejoinedIn(d registry.Delta) func(string) bool {
	switch {
	case len(d.Removed) == 0 || len(d.Added) == 0:
		return func(string) bool { return false }
	case len(d.Added) <= smallChange:
		return func(id string) bool { return slices.Contains(d.Added, id) }
	}
	added := make(map[string]struct{}, len(d.Added))
	for _, id := range d.Added {
		added[id] = struct{}{}
	}
	return func(id string) bool { _, ok := added[id]; return ok }
}

// first builds a whole set into an empty endpointer: the instance strings
// sorted once, as strings, and the targets built in that order, so the
// set is published as built, with no sort of the targets after (a sort
// through pointers, most of what a first set cost beyond the builds).
func (e *Endpointer) first(added []string) {
	ids := slices.Clone(added) // shared with the instancer's other subscribers
	slices.Sort(ids)
	e.byID = make(map[string]*balancer.Target, len(ids))
	ts := make([]*balancer.Target, 0, len(ids))
	for _, id := range ids {
		if t := e.addLocked(id); t != nil {
			ts = append(ts, t)
		}
	}
	if len(ts) > 0 {
		e.storeLocked(ts)
	}
}

// addLocked builds id's target and indexes it. It returns nil for an id
// already held and for one whose build failed (logged and skipped).
func (e *Endpointer) addLocked(id string) *balancer.Target {
	if _, ok := e.byID[id]; ok {
		return nil
	}
	t, err := e.build(id)
	if err != nil {
		e.failedLocked(id, err)
		return nil
	}
	delete(e.unbuilt, id)
	e.byID[id] = t
	return t
}

func (e *Endpointer) update(ev sd.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.noteDiscovery(ev.Err)
	if ev.Err != nil {
		// As go-kit does by default: discovery trouble is not instance
		// trouble, so keep calling the last known set.
		e.markReady()
		return
	}
	next := make(map[string]*balancer.Target, len(ev.Instances))
	clear(e.unbuilt) // the whole set: those listed are tried now
	for _, id := range ev.Instances {
		if t, ok := e.byID[id]; ok {
			next[id] = t
			delete(e.byID, id)
			continue
		}
		if _, dup := next[id]; dup {
			continue
		}
		if _, ok := e.unbuilt[id]; ok {
			continue // a duplicate of one that failed
		}
		t, err := e.build(id)
		if err != nil {
			e.failedLocked(id, err)
			continue
		}
		next[id] = t
	}
	for _, gone := range e.byID {
		gone.Retire()
	}
	e.byID = next
	e.publishLocked()
	e.markReady()
}

func (e *Endpointer) build(id string) (*balancer.Target, error) {
	var ep endpoint.Endpoint
	var closer io.Closer
	var err error
	switch {
	case e.ifactory != nil:
		var inst registry.Instance
		if inst, err = registry.ParseInstance(id); err != nil {
			return nil, err
		}
		ep, closer, err = e.ifactory(inst)
	case e.dsrc != nil:
		// A delta instancer serves instance strings that parse (its
		// contract): the factory takes the string, so nothing to parse.
		ep, closer, err = e.factory(id)
	default:
		if _, err = registry.ParseInstance(id); err != nil {
			return nil, err
		}
		ep, closer, err = e.factory(id)
	}
	if err != nil {
		return nil, err
	}
	// On the stack: up to four options, none kept by the target.
	var buf [4]balancer.TargetOption
	opts := append(buf[:0], e.epoch, balancer.WithCloser(closer))
	if e.failed != nil {
		opts = append(opts, balancer.WithFailure(e.failed))
	}
	if e.detector != nil {
		opts = append(opts, balancer.WithBreaker(e.detector.NewBreaker(outlier.ForInstance(id))))
	}
	// The parsed record is not kept: the target parses it again only if
	// its balancer asks (Target.Instance), which P2C never does.
	return balancer.NewCheckedTarget(id, ep, opts...), nil
}

func (e *Endpointer) publishLocked() {
	ts := make([]*balancer.Target, 0, len(e.byID))
	for _, t := range e.byID {
		ts = append(ts, t)
	}
	// Sorted like go-kit's cache, so balancers see a stable order.
	slices.SortFunc(ts, byID)
	e.storeLocked(ts)
}

// smallChange is the largest change applied by insertion into a copy of
// the sorted slice; a larger one re-sorts.
const smallChange = 32

// publishChangeLocked publishes the set after gone left and born joined:
// a copy of the sorted slice with each removed and inserted by binary
// search, so the order stays that of publishLocked without a sort.
func (e *Endpointer) publishChangeLocked(gone, born []*balancer.Target) {
	cur := e.Targets()
	if len(gone)+len(born) > smallChange {
		e.publishLocked()
		return
	}
	ts := make([]*balancer.Target, len(cur), len(cur)+len(born))
	copy(ts, cur)
	for _, t := range gone {
		if i, ok := slices.BinarySearchFunc(ts, t, byID); ok {
			ts = slices.Delete(ts, i, i+1)
		}
	}
	for _, t := range born {
		i, _ := slices.BinarySearchFunc(ts, t, byID)
		ts = slices.Insert(ts, i, t)
	}
	e.storeLocked(ts)
}

func byID(a, b *balancer.Target) int { return strings.Compare(a.ID, b.ID) }

// storeLocked makes ts the current set. ts is never modified after: the
// balancer keeps it as is.
func (e *Endpointer) storeLocked(ts []*balancer.Target) {
	e.current.Store(&ts)
	if e.bal != nil {
		e.bal.Update(ts)
	}
}

func (e *Endpointer) markReady() { e.readyOnce.Do(func() { close(e.ready) }) }

// Targets returns the current set, sorted by instance string. The slice is
// shared: do not modify it.
func (e *Endpointer) Targets() []*balancer.Target {
	if p := e.current.Load(); p != nil {
		return *p
	}
	return nil
}

// Endpoints implements go-kit's sd.Endpointer. Each endpoint goes through
// Target.Call, so go-kit balancers on top still keep in-flight and health
// figures and never call a closed instance.
func (e *Endpointer) Endpoints() ([]endpoint.Endpoint, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("endpointer: %w", ErrClosed)
	}
	ts := e.Targets()
	eps := make([]endpoint.Endpoint, len(ts))
	for i, t := range ts {
		eps[i] = t.Call
	}
	return eps, nil
}

// Ready is closed once discovery has answered (with a set or an error).
func (e *Endpointer) Ready() <-chan struct{} { return e.ready }

// Wait blocks until discovery has answered, ctx ends or the endpointer is
// closed.
func (e *Endpointer) Wait(ctx context.Context) error {
	select {
	case <-e.ready:
		return nil
	case <-e.stop:
		return fmt.Errorf("endpointer: %w", ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close deregisters from the instancer, stops the goroutine and retires
// every target (each closes when its in-flight calls finish). It is
// idempotent and does not Stop the instancer, which the caller owns.
func (e *Endpointer) Close() {
	e.closeOnce.Do(func() {
		if e.dsrc != nil {
			e.dsrc.DeregisterDelta(e.deltas)
		} else {
			e.src.Deregister(e.events)
		}
		close(e.stop)
		<-e.done
		e.mu.Lock()
		defer e.mu.Unlock()
		e.closed = true
		clear(e.unbuilt)
		for _, t := range e.byID {
			t.Retire()
		}
		e.byID = map[string]*balancer.Target{}
		e.publishLocked()
	})
}
