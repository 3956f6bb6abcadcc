package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log/level"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// Kubelet turns a process's readiness into its Pod's readiness, which the
// EndpointSlice controller turns into endpoint readiness. In a cluster the
// real kubelet does this by probing /readyz, and a Registry needs no
// Kubelet: Register and Deregister flip the registration state that
// /readyz reports. Where no kubelet runs (the tests, against a bare
// apiserver), kubetest.Kubelet stands in for it and writes the Pod.
//
// SetReady must return once the Pod says what ready asks (the
// EndpointSlice follows asynchronously). An instance ID held by another
// live Pod at another address is refused with an error wrapping
// registry.ErrConflict; setting an instance not ready that another
// process has taken over does nothing.
type Kubelet interface {
	SetReady(ctx context.Context, inst registry.Instance, ready bool) error
}

// Registry is the Kubernetes registry.Registry. Create it with New; it is
// safe for concurrent use.
type Registry struct {
	cfg       config
	client    kubernetes.Interface
	namespace string
	listed    *atomic.Pointer[func() bool] // whether discovery holds a set, for the transport's loss line

	// opMu serialises Register and Deregister, so the Kubelet sees one
	// instance's flips in the order they were made.
	opMu sync.Mutex

	// life ends with Close: it ends the waits for an apiserver that does
	// not answer (Register's read check, Services' first listing), which
	// would otherwise last until their ctx ends.
	life    context.Context
	endLife context.CancelFunc

	mu     sync.Mutex
	closed bool
	regs   *registry.Tracker[*registry.Instance] // by instance ID
	// waiting holds, by instance ID, the Register that still waits for
	// the apiserver (awaitReadable), outside opMu: a later Register or
	// Deregister of the ID ends it, so the calls take effect in the order
	// they were made, not in the order they get through.
	waiting    map[string]*waitingRegister
	caches     *caches // started by the first Instancer or Services call
	instancers map[*Instancer]struct{}
}

var (
	_ registry.Registry       = (*Registry)(nil)
	_ registry.StatusReporter = (*Registry)(nil)
	_ registry.Catalog        = (*Registry)(nil)
)

// New returns a Registry over the apiserver the options name (in-cluster
// by default). It does not wait for the apiserver: informers start with
// the first Instancer and fill their caches when it answers. ctx is not
// retained.
func New(ctx context.Context, opts ...Option) (*Registry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	rc, err := cfg.restConfig()
	if err != nil {
		return nil, err
	}
	ns, err := cfg.resolveNamespace()
	if err != nil {
		return nil, err
	}
	listed := &atomic.Pointer[func() bool]{}
	rc.Wrap(watchReachability(cfg.logger, listed))
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes registry: client: %w", err)
	}
	life, endLife := context.WithCancel(context.Background())
	return &Registry{
		cfg:        cfg,
		client:     cs,
		namespace:  ns,
		listed:     listed,
		life:       life,
		endLife:    endLife,
		regs:       registry.NewTracker[*registry.Instance](),
		waiting:    map[string]*waitingRegister{},
		instancers: map[*Instancer]struct{}{},
	}, nil
}

// errSuperseded ends a Register that a later Deregister or Register of
// the same ID overtook while it waited for the apiserver.
var errSuperseded = errors.New("not registered: a later Deregister or Register of it came while it waited for the apiserver")

// waitingRegister is a Register waiting for the apiserver; r.mu guards it.
type waitingRegister struct {
	cancel     context.CancelFunc
	superseded bool // a later Register or Deregister of the ID came
}

// supersede ends the wait of the Register of id that waits, if any.
// r.mu must be held.
func (r *Registry) supersede(id string) {
	if w := r.waiting[id]; w != nil {
		w.superseded = true
		w.cancel()
		delete(r.waiting, id)
	}
}

// stillFirst reports whether w was not superseded, and ends its wait
// either way: past this point a Deregister finds what it registered.
func (r *Registry) stillFirst(id string, w *waitingRegister) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiting[id] == w {
		delete(r.waiting, id)
	}
	return !w.superseded
}

// Namespace returns the namespace the Registry discovers in.
func (r *Registry) Namespace() string { return r.namespace }

// Register puts inst into rotation: it tells the Kubelet (if any) that the
// instance is ready and records it as registered, which is what /readyz
// reports to the real kubelet. Registering again replaces the record.
// A Deregister (or another Register) of the same ID made while this one
// still waits for the apiserver ends it with an error: the later call
// wins.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &waitingRegister{cancel: cancel}
	r.mu.Lock()
	if r.closed { // before reading: an apiserver out of reach would hold it
		r.mu.Unlock()
		return fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, registry.ErrClosed)
	}
	r.supersede(inst.ID)
	r.waiting[inst.ID] = w
	r.mu.Unlock()
	if err := r.awaitReadable(ctx, inst); err != nil {
		if !r.stillFirst(inst.ID, w) {
			return fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, errSuperseded)
		}
		return err
	}
	r.opMu.Lock()
	defer r.opMu.Unlock()
	// Checked under opMu: a Deregister that came before it is over, one
	// that comes after it waits for this call and withdraws what it did.
	if !r.stillFirst(inst.ID, w) {
		return fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, errSuperseded)
	}
	if r.isClosed() {
		return fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, registry.ErrClosed)
	}
	if r.cfg.kubelet != nil {
		if err := r.cfg.kubelet.SetReady(ctx, inst, true); err != nil {
			err = fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, err)
			r.mu.Lock()
			r.regs.Failed(err)
			r.mu.Unlock()
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs.Put(inst.ID, &inst, registry.StateRegistered)
	return nil
}

// Deregister takes inst out of rotation: the Kubelet (if any) sets it not
// ready, and /readyz fails once no instance is registered. An instance
// that is not registered is no error, nor is a call after Close.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	r.mu.Lock()
	r.supersede(inst.ID) // a Register still waiting for the apiserver loses
	r.mu.Unlock()
	r.opMu.Lock()
	defer r.opMu.Unlock()
	r.mu.Lock()
	reg, _, had := r.regs.Get(inst.ID)
	r.mu.Unlock()
	if !had {
		return nil
	}
	if err := r.setNotReady(ctx, *reg); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.regs.Withdraw(inst.ID)
	return nil
}

// setNotReady tells the Kubelet (if any) that inst is not ready. A
// failure leaves the registration as it was, with the error in Status.
func (r *Registry) setNotReady(ctx context.Context, inst registry.Instance) error {
	if r.cfg.kubelet == nil {
		return nil
	}
	if err := r.cfg.kubelet.SetReady(ctx, inst, false); err != nil {
		err = fmt.Errorf("kubernetes registry: deregister %s: %w", inst.ID, err)
		r.mu.Lock()
		r.regs.Failed(err)
		r.mu.Unlock()
		return err
	}
	return nil
}

func (r *Registry) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Status implements registry.StatusReporter: registered while at least
// one instance is in rotation, withdrawn after the last Deregister or
// Close.
func (r *Registry) Status() registry.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.regs.Status()
}

// Instancer returns an sd.Instancer of service's ready endpoints, read
// from its EndpointSlices. It waits (bounded by ctx and the initial wait)
// for the first full read, so the set is usually known when it returns.
func (r *Registry) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if !registry.ValidName(service) {
		return nil, fmt.Errorf("kubernetes registry: service %q: %w", service, registry.ErrInvalidInstance)
	}
	inf, err := r.watches()
	if err != nil {
		return nil, err
	}
	in := newInstancer(r, inf, service)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		in.Stop()
		return nil, fmt.Errorf("kubernetes registry: instancer %s: %w", service, registry.ErrClosed)
	}
	r.instancers[in] = struct{}{}
	r.mu.Unlock()
	in.start(ctx)
	return in, nil
}

// watches returns the Registry's informers, starting them on first use.
func (r *Registry) watches() (*caches, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("kubernetes registry: %w", registry.ErrClosed)
	}
	if r.caches == nil {
		r.caches = startInformers(r.client, r.namespace, r.cfg.logger, r.watchError)
		listed := r.caches.hasSynced
		r.listed.Store(&listed)
	}
	return r.caches, nil
}

// watchError tells the observer that an informer's watch broke off.
func (r *Registry) watchError(err error) {
	r.mu.Lock()
	ins := make([]*Instancer, 0, len(r.instancers))
	for in := range r.instancers {
		ins = append(ins, in)
	}
	r.mu.Unlock()
	for _, in := range ins {
		r.cfg.observer.WatchRestarted(in.service, err)
	}
}

func (r *Registry) forget(in *Instancer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.instancers, in)
}

// Close takes every registered instance out of rotation (through the
// Kubelet, bounded by the close timeout), stops every instancer and the
// informers. Idempotent.
func (r *Registry) Close() error {
	r.opMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.opMu.Unlock()
		return nil
	}
	r.closed = true
	r.endLife()
	regs := r.regs.Close()
	r.mu.Unlock()
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.closeTimeout)
	for _, inst := range regs {
		if err := r.setNotReady(ctx, *inst); err != nil {
			errs = append(errs, err)
		}
	}
	cancel()
	r.mu.Lock()
	ins := make([]*Instancer, 0, len(r.instancers))
	for in := range r.instancers {
		ins = append(ins, in)
	}
	inf := r.caches
	r.mu.Unlock()
	r.opMu.Unlock()
	for _, in := range ins {
		in.Stop()
	}
	if inf != nil {
		inf.stop()
	}
	if err := errors.Join(errs...); err != nil {
		level.Warn(r.cfg.logger).Log("msg", "close could not take every instance out of rotation", "err", err)
		return err
	}
	return nil
}

// awaitReadable returns once the Registry can read the EndpointSlices of
// its namespace, as its instancers must. The kubelet makes the Pod ready
// from /readyz, and /readyz says ready once registered: without this, a
// Pod whose service account may not read the namespace (RBAC missing or
// revoked, a namespace typo, a token the apiserver refuses) went ready
// and replaced working Pods in a rollout, and then could discover nothing
// (report j47a). A refusal (401, 403) is final: retrying cannot fix the
// account, and the process exits with it (the rollout stalls on a Pod that
// restarts, and its log says why). An apiserver that does not answer is
// waited for, as an unreachable etcd is, not ready meanwhile.
func (r *Registry) awaitReadable(ctx context.Context, inst registry.Instance) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.life, cancel) // Close ends the wait
	defer stop()
	bo := backoff.New(100*time.Millisecond, 5*time.Second)
	for failed := 0; ; failed++ {
		err := r.readOne(ctx, readCheckTimeout)
		if err == nil {
			return nil
		}
		if r.life.Err() != nil {
			return fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, registry.ErrClosed)
		}
		if apierrors.IsUnauthorized(err) || apierrors.IsForbidden(err) {
			hint := "the service account needs get, list and watch on pods, services and endpointslices there; the chart's Role grants them in its release namespace"
			if apierrors.IsUnauthorized(err) {
				hint = unauthorizedHint
			}
			err = fmt.Errorf("kubernetes registry: register %s: cannot read EndpointSlices in namespace %q, so this instance could discover nothing (%s): %w",
				inst.ID, r.namespace, hint, err)
			r.failed(err)
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("kubernetes registry: register %s: %w (last error: %w)", inst.ID, ctx.Err(), err)
		}
		err = fmt.Errorf("kubernetes registry: register %s: reading EndpointSlices in namespace %q: %w", inst.ID, r.namespace, err)
		r.failed(err)
		level.Warn(r.cfg.logger).Log("msg", "cannot read the apiserver yet; not registering (not ready) until it answers",
			"id", inst.ID, "attempt", failed+1, "err", err)
		if !backoff.Sleep(ctx, bo.Next()) {
			if r.life.Err() != nil {
				return fmt.Errorf("kubernetes registry: register %s: %w", inst.ID, registry.ErrClosed)
			}
			return fmt.Errorf("kubernetes registry: register %s: %w (last error: %w)", inst.ID, ctx.Err(), err)
		}
	}
}

// readCheckTimeout bounds one read of awaitReadable.
const readCheckTimeout = 10 * time.Second

func (r *Registry) failed(err error) {
	r.mu.Lock()
	r.regs.Failed(err)
	r.mu.Unlock()
}
