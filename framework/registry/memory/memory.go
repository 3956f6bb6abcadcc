// Package memory is an in-process registry backend. It is real enough for
// unit tests of everything above discovery (lifecycle, clients, balancers)
// and for single-process demos; it shares nothing across processes.
//
// A Server holds the instances; each Registry is one client of it, as a
// process is a client of etcd or Consul, and follows the same contract
// (docs/registry.md): an ID held by one Registry is refused to another at a
// different address (registry.ErrConflict) and taken over at the same
// address; Close withdraws only what that Registry holds and stops only
// the instancers made from it. New gives a Registry with a Server of its
// own.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// ErrClosed is registry.ErrClosed, returned by Register and Instancer after
// Close.
var ErrClosed = registry.ErrClosed

// Server is the shared state several Registries see: what a registry
// server is to its clients.
type Server struct {
	// pub serialises publishing: a change is made under mu, and the set
	// is read under mu and sent to the watchers after mu is released, so
	// a watcher that reads the Registry (Instances, Status) while it
	// handles an event does not hang a Register waiting for it to read.
	// Taken before mu, it sends the sets in the order they were made.
	pub      sync.Mutex
	mu       sync.Mutex
	services map[string]map[string]entry        // name → id → entry
	watchers map[string]map[*instancer]struct{} // name → instancers not stopped
}

type entry struct {
	inst  registry.Instance
	owner *Registry
}

// NewServer returns an empty Server.
func NewServer() *Server {
	return &Server{services: map[string]map[string]entry{}, watchers: map[string]map[*instancer]struct{}{}}
}

// Registry returns a new client of the server.
func (s *Server) Registry() *Registry {
	return &Registry{srv: s, held: registry.NewTracker[struct{}](), instancers: map[*instancer]struct{}{}}
}

// Registry is one client of a Server. The zero value is not usable; call
// New or Server.Registry.
type Registry struct {
	srv *Server

	// Guarded by srv.mu.
	closed     bool
	held       *registry.Tracker[struct{}] // the instances this Registry holds, by name/ID
	instancers map[*instancer]struct{}     // made by Instancer and not yet stopped
}

var (
	_ registry.Registry       = (*Registry)(nil)
	_ registry.StatusReporter = (*Registry)(nil)
)

// New returns a Registry with a server of its own.
func New() *Registry { return NewServer().Registry() }

// Register publishes inst. Registering an ID this Registry holds replaces
// it; an ID another Registry holds is taken over at the same address and
// refused with registry.ErrConflict at a different one.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	s := r.srv
	s.mu.Lock()
	if r.closed {
		s.mu.Unlock()
		return fmt.Errorf("memory registry: %w", ErrClosed)
	}
	set := s.services[inst.Name]
	if set == nil {
		set = map[string]entry{}
		s.services[inst.Name] = set
	}
	old, had := set[inst.ID]
	if had && old.owner != r && old.inst.HostPort() != inst.HostPort() {
		err := fmt.Errorf("%w: %s is held by %s, refused for %s", registry.ErrConflict, inst.ID, old.inst.HostPort(), inst.HostPort())
		r.held.Failed(err)
		s.mu.Unlock()
		return err
	}
	if had && old.owner != r {
		old.owner.held.Withdraw(heldKey(inst))
	}
	set[inst.ID] = entry{inst: inst, owner: r}
	r.held.Put(heldKey(inst), struct{}{}, registry.StateRegistered)
	s.mu.Unlock()
	s.publish(inst.Name)
	return nil
}

// Deregister withdraws inst if this Registry holds it. Withdrawing an
// instance it does not hold is not an error, and neither is withdrawing
// after Close (everything is withdrawn then).
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s := r.srv
	s.mu.Lock()
	e, ok := s.services[inst.Name][inst.ID]
	mine := !r.closed && ok && e.owner == r
	if mine {
		delete(s.services[inst.Name], inst.ID)
		r.held.Withdraw(heldKey(inst))
	}
	s.mu.Unlock()
	if mine {
		s.publish(inst.Name)
	}
	return nil
}

// heldKey names an instance in a Registry's Tracker.
func heldKey(inst registry.Instance) string { return inst.Name + "/" + inst.ID }

// Status implements registry.StatusReporter: registered while this
// Registry holds any instance, withdrawn after it held some and holds none.
func (r *Registry) Status() registry.Status {
	r.srv.mu.Lock()
	defer r.srv.mu.Unlock()
	return r.held.Status()
}

// Instances returns the published instances of a service, whoever holds
// them.
func (r *Registry) Instances(service string) []registry.Instance {
	s := r.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]registry.Instance, 0, len(s.services[service]))
	for _, e := range s.services[service] {
		out = append(out, e.inst)
	}
	return out
}

// Instancer returns an sd.Instancer for service, with a cache of its own
// that every change of the service reaches; Stop on one ends the
// subscriptions made through it and no other. The caller must Stop it;
// Close stops any still running.
func (r *Registry) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !registry.ValidName(service) {
		return nil, fmt.Errorf("%w: service name %q", registry.ErrInvalidInstance, service)
	}
	s := r.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("memory registry: %w", ErrClosed)
	}
	in := &instancer{Cache: registry.NewCache(), reg: r, service: service}
	// Filled under mu: a change made after it reaches the instancer by
	// publish, which reads the set and the watchers together.
	in.Update(sd.Event{Instances: s.setLocked(service)})
	if s.watchers[service] == nil {
		s.watchers[service] = map[*instancer]struct{}{}
	}
	s.watchers[service][in] = struct{}{}
	r.instancers[in] = struct{}{}
	return in, nil
}

// forget drops a stopped instancer from the ones Close stops and the
// ones changes reach.
func (r *Registry) forget(in *instancer) {
	s := r.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(r.instancers, in)
	delete(s.watchers[in.service], in)
	if len(s.watchers[in.service]) == 0 {
		delete(s.watchers, in.service)
	}
}

// Close withdraws every instance this Registry holds, then stops the
// instancers made from it (their subscribers get the withdrawal first,
// then nothing more); other Registries of the Server, and their
// instancers, go on. It is idempotent.
func (r *Registry) Close() error {
	s := r.srv
	s.mu.Lock()
	if r.closed {
		s.mu.Unlock()
		return nil
	}
	r.closed = true
	var changed []string
	for name, set := range s.services {
		n := len(set)
		for id, e := range set {
			if e.owner == r {
				delete(set, id)
			}
		}
		if len(set) != n {
			changed = append(changed, name)
		}
	}
	r.held.Close()
	instancers := r.instancers
	r.instancers = map[*instancer]struct{}{}
	s.mu.Unlock()
	for _, name := range changed {
		s.publish(name)
	}
	for in := range instancers {
		in.Stop()
	}
	return nil
}

// publish sends the service's current set to its watchers, if it has
// any, outside mu (see Server.pub). Call it without mu held.
func (s *Server) publish(service string) {
	s.pub.Lock()
	defer s.pub.Unlock()
	s.mu.Lock()
	var set []string
	ins := make([]*instancer, 0, len(s.watchers[service]))
	for in := range s.watchers[service] {
		ins = append(ins, in)
	}
	if len(ins) > 0 {
		set = s.setLocked(service)
	}
	s.mu.Unlock()
	for _, in := range ins {
		// One stopped meanwhile ignores it (registry.Cache.Stop).
		in.Update(sd.Event{Instances: set})
	}
}

func (s *Server) setLocked(service string) []string {
	set := make([]string, 0, len(s.services[service]))
	for _, e := range s.services[service] {
		set = append(set, e.inst.String())
	}
	return set
}

var _ registry.Catalog = (*Registry)(nil)

// Services implements registry.Catalog: the services with at least one
// published instance, sorted.
func (r *Registry) Services(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := r.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("memory registry: %w", ErrClosed)
	}
	out := make([]string, 0, len(s.services))
	for name, set := range s.services {
		if len(set) > 0 {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}
