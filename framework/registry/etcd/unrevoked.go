package etcd

import (
	"errors"
	"time"
)

// unrevoked is a lease Deregister withdrew but could not revoke (etcd
// unreachable): Close reports it, where it would otherwise have found no
// registration left and returned nil (phase=release err=none while the
// lease was still alive).
type unrevoked struct {
	err error     // revoke's own error: "etcd: revoke lease …: …"
	at  time.Time // when the last attempt failed
}

// noteUnrevoked records revoke's failure after a Deregister. Entries a
// TTL old are dropped here too, so a process whose watchdog withdraws
// through a long etcd outage, again and again, holds only those that
// Close could still report.
func (r *Registry) noteUnrevoked(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unrevoked = append(r.live(), unrevoked{err: err, at: time.Now()})
}

// live returns the failures whose lease may still be alive; r.mu is held.
func (r *Registry) live() []unrevoked {
	kept := r.unrevoked[:0]
	for _, u := range r.unrevoked {
		if time.Since(u.at) < r.cfg.ttl {
			kept = append(kept, u)
		}
	}
	return kept
}

// takeUnrevoked returns the failures whose lease may still be alive. A
// lease expires at most one TTL after its last keepalive, which came
// before the failed attempt; one older than that has nothing left to
// revoke (a withdraw by the watchdog long before the stop, say).
func (r *Registry) takeUnrevoked() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, u := range r.live() {
		errs = append(errs, u.err)
	}
	r.unrevoked = nil
	return errors.Join(errs...)
}
