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
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

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
	bal      balancer.Balancer
	detector *outlier.Detector
	failed   func(error) bool
	logger   log.Logger

	events chan sd.Event
	stop   chan struct{}
	done   chan struct{}

	ready     chan struct{}
	readyOnce sync.Once

	mu      sync.Mutex // guards byID and closed; held by update and Close
	byID    map[string]*balancer.Target
	closed  bool
	current atomic.Pointer[[]*balancer.Target]

	closeOnce sync.Once
}

// Option configures an Endpointer.
type Option func(*Endpointer)

// WithBalancer sets the balancer that gets every new set (default none).
func WithBalancer(b balancer.Balancer) Option { return func(e *Endpointer) { e.bal = b } }

// WithDetector gives every target an outlier breaker from d (default none:
// no ejection).
func WithDetector(d *outlier.Detector) Option { return func(e *Endpointer) { e.detector = d } }

// WithFailure sets which call errors count against an instance's health
// (default: all).
func WithFailure(f func(error) bool) Option { return func(e *Endpointer) { e.failed = f } }

// WithLogger sets where factory and discovery errors go (default nowhere).
func WithLogger(l log.Logger) Option { return func(e *Endpointer) { e.logger = l } }

// New subscribes to src and builds targets with f.
func New(src sd.Instancer, f sd.Factory, opts ...Option) *Endpointer {
	e := &Endpointer{
		src:     src,
		factory: f,
		logger:  log.NewNopLogger(),
		events:  make(chan sd.Event),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		ready:   make(chan struct{}),
		byID:    map[string]*balancer.Target{},
	}
	for _, o := range opts {
		o(e)
	}
	// The goroutine must run before Register: instancers send the current
	// set synchronously from inside it.
	go e.receive()
	src.Register(e.events)
	return e
}

func (e *Endpointer) receive() {
	defer close(e.done)
	for {
		select {
		case ev := <-e.events:
			e.update(ev)
		case <-e.stop:
			return
		}
	}
}

func (e *Endpointer) update(ev sd.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if ev.Err != nil {
		// As go-kit does by default: discovery trouble is not instance
		// trouble, so keep calling the last known set.
		e.logger.Log("msg", "discovery error; keeping last known instances", "instances", len(e.byID), "err", ev.Err)
		e.markReady()
		return
	}
	next := make(map[string]*balancer.Target, len(ev.Instances))
	for _, id := range ev.Instances {
		if t, ok := e.byID[id]; ok {
			next[id] = t
			delete(e.byID, id)
			continue
		}
		if _, dup := next[id]; dup {
			continue
		}
		t, err := e.build(id)
		if err != nil {
			e.logger.Log("msg", "skipping instance", "instance", id, "err", err)
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
	ep, closer, err := e.factory(id)
	if err != nil {
		return nil, err
	}
	opts := []balancer.TargetOption{balancer.WithCloser(closer)}
	if e.failed != nil {
		opts = append(opts, balancer.WithFailure(e.failed))
	}
	var br *outlier.Breaker
	if e.detector != nil {
		br = e.detector.NewBreaker(outlier.ForInstance(id))
		opts = append(opts, balancer.WithBreaker(br))
	}
	t, err := balancer.NewTarget(id, ep, opts...)
	if err != nil {
		// The factory accepted a string the registry cannot parse; undo
		// what was built for it.
		if closer != nil {
			_ = closer.Close()
		}
		if br != nil {
			br.Release()
		}
		return nil, err
	}
	return t, nil
}

func (e *Endpointer) publishLocked() {
	ts := make([]*balancer.Target, 0, len(e.byID))
	for _, t := range e.byID {
		ts = append(ts, t)
	}
	// Sorted like go-kit's cache, so balancers see a stable order.
	slices.SortFunc(ts, func(a, b *balancer.Target) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
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
		e.src.Deregister(e.events)
		close(e.stop)
		<-e.done
		e.mu.Lock()
		defer e.mu.Unlock()
		e.closed = true
		for _, t := range e.byID {
			t.Retire()
		}
		e.byID = map[string]*balancer.Target{}
		e.publishLocked()
	})
}
