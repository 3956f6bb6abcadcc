package registry

import "time"

// Tracker holds the registrations of one Registry by key (an etcd key, a
// znode path, an instance ID) with the state of each, and the Status they
// add up to by the contract's rule (docs/registry.md): unregistered before
// the first Register; the worst state of those it holds (Worst); withdrawn
// once every one was withdrawn, and after Close. A registration that is
// dropped without being withdrawn (a Register that failed) leaves the
// state as it was, with the failure in LastError.
//
// R is the backend's registration, usually a pointer: Set and Drop name
// the one they speak for, and are ignored once it was replaced or
// removed, so a loop that is being stopped cannot overwrite the state of
// the registration that took its place.
//
// A Tracker does no locking: the Registry guards it with the lock it
// holds around its own registration work. Make it with NewTracker.
type Tracker[R comparable] struct {
	status Status
	regs   map[string]tracked[R]
}

type tracked[R comparable] struct {
	reg   R
	state State
}

// NewTracker returns an empty Tracker, unregistered since now.
func NewTracker[R comparable]() *Tracker[R] {
	return &Tracker[R]{
		status: Status{State: StateUnregistered, Since: time.Now()},
		regs:   map[string]tracked[R]{},
	}
}

// Status is the Status of every registration together.
func (t *Tracker[R]) Status() Status { return t.status }

// Get returns the registration under key and its state.
func (t *Tracker[R]) Get(key string) (reg R, state State, ok bool) {
	e, ok := t.regs[key]
	return e.reg, e.state, ok
}

// Put holds reg under key in state, in place of any registration there.
func (t *Tracker[R]) Put(key string, reg R, state State) {
	t.regs[key] = tracked[R]{reg: reg, state: state}
	t.recompute()
}

// Set records a state change of reg, if it is still the registration
// under key: err (if not nil) becomes LastError, reregistered counts one
// more re-registration, and StateWithdrawn removes it (as Withdraw).
func (t *Tracker[R]) Set(key string, reg R, state State, err error, reregistered bool) {
	if e, ok := t.regs[key]; !ok || e.reg != reg {
		return
	}
	if reregistered {
		t.status.Reregistrations++
	}
	t.Failed(err)
	if state == StateWithdrawn {
		t.Withdraw(key)
		return
	}
	t.regs[key] = tracked[R]{reg: reg, state: state}
	t.recompute()
}

// Drop removes reg, if it is still the registration under key, without
// withdrawing it: its Register failed with err.
func (t *Tracker[R]) Drop(key string, reg R, err error) {
	if e, ok := t.regs[key]; !ok || e.reg != reg {
		return
	}
	t.Failed(err)
	delete(t.regs, key)
	t.recompute()
}

// Withdraw removes the registration under key and returns it; the state
// is withdrawn once none is left.
func (t *Tracker[R]) Withdraw(key string) (R, bool) {
	e, ok := t.regs[key]
	delete(t.regs, key)
	if ok && len(t.regs) == 0 {
		t.setState(StateWithdrawn)
	}
	t.recompute()
	return e.reg, ok
}

// Close removes every registration and returns them by key; the state is
// withdrawn.
func (t *Tracker[R]) Close() map[string]R {
	out := make(map[string]R, len(t.regs))
	for k, e := range t.regs {
		out[k] = e.reg
	}
	clear(t.regs)
	t.setState(StateWithdrawn)
	return out
}

// Failed records err (if not nil) as LastError, whichever registration
// it concerns.
func (t *Tracker[R]) Failed(err error) {
	if err != nil {
		t.status.LastError = err.Error()
	}
}

// Reregistered counts one more re-registration.
func (t *Tracker[R]) Reregistered() { t.status.Reregistrations++ }

// recompute sets the state from every registration: the worst wins. With
// none it keeps the state it has (unregistered before the first Register,
// withdrawn after the last Deregister, or as a failed Register left it).
func (t *Tracker[R]) recompute() {
	if len(t.regs) == 0 {
		return
	}
	agg := StateRegistered
	for _, e := range t.regs {
		agg = Worst(agg, e.state)
	}
	t.setState(agg)
}

func (t *Tracker[R]) setState(s State) {
	if t.status.State != s {
		t.status.State = s
		t.status.Since = time.Now()
	}
}
