package registry

import (
	"context"
	"time"

	"github.com/go-kit/kit/sd"
)

// Registrar publishes this process's instance to discovery.
//
// Register returns once the instance is published (or ctx ends); from then
// on the backend keeps it published (lease keepalives, TTL heartbeats,
// re-registration after the backend forgets it) until Deregister. Deregister
// withdraws the instance so clients stop picking it; it may be followed by
// another Register (the readiness watchdog does this).
type Registrar interface {
	Register(ctx context.Context, inst Instance) error
	Deregister(ctx context.Context, inst Instance) error
}

// Discovery turns a service name into a go-kit sd.Instancer whose events
// carry Instance.String values. The Instancer is owned by the caller, who
// must Stop it.
type Discovery interface {
	Instancer(ctx context.Context, service string) (sd.Instancer, error)
}

// Registry is a backend with both sides. Close releases everything the
// backend holds (leases, sessions, client connections); it is idempotent.
type Registry interface {
	Registrar
	Discovery
	Close() error
}

// State is where a registrar stands with one instance.
type State string

// Registrar states, as shown in /readyz and metrics.
const (
	StateUnregistered State = "unregistered"
	StateRegistered   State = "registered"
	StateRetrying     State = "retrying"
	StateWithdrawn    State = "withdrawn"
)

// Worst returns the worse of two registration states, as a Registry that
// holds several registrations reports them (the conformance suite's Status
// rule): retrying is worse than unregistered, which is worse than anything
// else; on a tie a wins.
func Worst(a, b State) State {
	rank := func(s State) int {
		switch s {
		case StateRetrying:
			return 2
		case StateUnregistered:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// Status is a registrar's view of its own registration.
type Status struct {
	State State `json:"state"`
	// LastError is the most recent failure, kept after recovery for context.
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
	// Reregistrations counts how often the backend had to publish the
	// instance again after losing it (lease loss, agent restart).
	Reregistrations int `json:"reregistrations"`
}

// StatusReporter is implemented by registrars that can say whether their
// registration is currently live; the lifecycle shows it in /readyz.
type StatusReporter interface {
	Status() Status
}

// Catalog is implemented by backends that can list the services they
// hold, so operators' tools (`warren ls`, the mesh page) find every service
// without being told the names. It reads only; names that are not valid
// service names (ValidName) are left out, sorted otherwise.
type Catalog interface {
	Services(ctx context.Context) ([]string, error)
}

// ReadinessAware is implemented by registrars that push health to the
// backend themselves (a Consul TTL check). The lifecycle hands them the
// service's readiness so the backend sees what /readyz says.
type ReadinessAware interface {
	UseReadiness(ready func(ctx context.Context) error)
}

// Observer hears what a backend's instancers see, for metrics (package
// metrics has a Prometheus one). Methods are called from the instancers'
// goroutines, concurrently: they must be quick.
type Observer interface {
	// WatchRestarted reports that the watch of service (etcd) or its
	// blocking-query loop (Consul) broke off and starts over from a full
	// read, and why.
	WatchRestarted(service string, reason error)
	// Instances reports how many instances of service an instancer
	// publishes now.
	Instances(service string, n int)
	// Skipped reports how many records under service's prefix an
	// instancer does not serve now (unreadable, mismatched, too large, not
	// kept alive). Their details are logged once per full read.
	Skipped(service string, n int)
}

// NopObserver ignores everything.
type NopObserver struct{}

// WatchRestarted implements Observer.
func (NopObserver) WatchRestarted(string, error) {}

// Instances implements Observer.
func (NopObserver) Instances(string, int) {}

// Skipped implements Observer.
func (NopObserver) Skipped(string, int) {}
