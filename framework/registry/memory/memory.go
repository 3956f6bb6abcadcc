// Package memory is an in-process registry backend. It is real enough for
// unit tests of everything above discovery (lifecycle, clients, balancers)
// and for single-process demos; it shares nothing across processes.
package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("memory registry: closed")

// Registry is an in-memory registry.Registry. The zero value is not usable;
// call New.
type Registry struct {
	mu       sync.Mutex
	closed   bool
	services map[string]map[string]registry.Instance // name → id → instance
	caches   map[string]*registry.Cache
	status   registry.Status
}

var _ registry.Registry = (*Registry)(nil)

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		services: map[string]map[string]registry.Instance{},
		caches:   map[string]*registry.Cache{},
		status:   registry.Status{State: registry.StateUnregistered, Since: time.Now()},
	}
}

// Register publishes inst. Registering the same ID again with the same
// address replaces it; a different address is refused with ErrConflict.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	set := r.services[inst.Name]
	if set == nil {
		set = map[string]registry.Instance{}
		r.services[inst.Name] = set
	}
	if old, ok := set[inst.ID]; ok && old.HostPort() != inst.HostPort() {
		return fmt.Errorf("%w: %s is held by %s, refused for %s", registry.ErrConflict, inst.ID, old.HostPort(), inst.HostPort())
	}
	set[inst.ID] = inst
	r.status = registry.Status{State: registry.StateRegistered, Since: time.Now()}
	r.publishLocked(inst.Name)
	return nil
}

// Deregister withdraws inst. Withdrawing an unknown instance is not an error.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	delete(r.services[inst.Name], inst.ID)
	r.status = registry.Status{State: registry.StateWithdrawn, Since: time.Now()}
	r.publishLocked(inst.Name)
	return nil
}

// Status implements registry.StatusReporter (for the last call made).
func (r *Registry) Status() registry.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// Instances returns the published instances of a service.
func (r *Registry) Instances(service string) []registry.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]registry.Instance, 0, len(r.services[service]))
	for _, inst := range r.services[service] {
		out = append(out, inst)
	}
	return out
}

// Instancer returns an sd.Instancer for service. All instancers of one
// service share a cache; Stop on one does not affect the others.
func (r *Registry) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, ErrClosed
	}
	r.cacheLocked(service)
	return &instancer{Cache: r.caches[service]}, nil
}

// Close drops all registrations. It is idempotent.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	for name := range r.services {
		delete(r.services, name)
		r.publishLocked(name)
	}
	return nil
}

func (r *Registry) cacheLocked(service string) *registry.Cache {
	c := r.caches[service]
	if c == nil {
		c = registry.NewCache()
		r.caches[service] = c
		r.fillLocked(service, c)
	}
	return c
}

func (r *Registry) publishLocked(service string) {
	if c := r.caches[service]; c != nil {
		r.fillLocked(service, c)
	}
}

func (r *Registry) fillLocked(service string, c *registry.Cache) {
	set := make([]string, 0, len(r.services[service]))
	for _, inst := range r.services[service] {
		set = append(set, inst.String())
	}
	c.Update(sd.Event{Instances: set})
}

// instancer gives each caller its own Stop.
type instancer struct {
	*registry.Cache
}

func (instancer) Stop() {}
