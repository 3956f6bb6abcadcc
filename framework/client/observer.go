package client

import (
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// Observer hears what a client does, for metrics. Methods are called on the
// call path, concurrently: they must be quick. Instances are named by their
// registry ID. Embed NopObserver to implement only some methods.
type Observer interface {
	// Picked reports that an attempt went to instance.
	Picked(service, instance string)
	// Retried reports that a call made another attempt: after a failure,
	// or beside a slow attempt (a hedge, retry.WithHedging).
	Retried(service string)
	// RetryBudgetExhausted reports a call that wanted another attempt and
	// was refused one by the retry budget.
	RetryBudgetExhausted(service string)
	// BreakerChanged reports that instance's outlier breaker moved from one
	// state to another; to == outlier.Open is an ejection.
	BreakerChanged(service, instance string, from, to outlier.State)
	// InstanceReleased reports that instance left the client's set and its
	// last call has returned: nothing more is reported for it, so its
	// per-instance state (metric series) can go.
	InstanceReleased(service, instance string)
}

// NopObserver ignores everything.
type NopObserver struct{}

// Picked implements Observer.
func (NopObserver) Picked(string, string) {}

// Retried implements Observer.
func (NopObserver) Retried(string) {}

// RetryBudgetExhausted implements Observer.
func (NopObserver) RetryBudgetExhausted(string) {}

// BreakerChanged implements Observer.
func (NopObserver) BreakerChanged(string, string, outlier.State, outlier.State) {}

// InstanceReleased implements Observer.
func (NopObserver) InstanceReleased(string, string) {}

// breakerObserver adapts an Observer to the outlier detector of one
// service, turning instance strings into IDs.
type breakerObserver struct {
	service string
	obs     Observer
}

func (b breakerObserver) BreakerChanged(instance string, from, to outlier.State) {
	b.obs.BreakerChanged(b.service, instanceID(instance), from, to)
}

// BreakerReleased is not passed on: the instance's release is reported
// once, by its transport's closer, after its last call (InstanceReleased).
func (b breakerObserver) BreakerReleased(string, outlier.State) {}

func instanceID(s string) string {
	if inst, err := registry.ParseInstance(s); err == nil {
		return inst.ID
	}
	return s
}
