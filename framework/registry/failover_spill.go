package registry

import (
	"slices"

	"github.com/go-kit/kit/sd"
)

// spillReq is a Spill(true) in force: the source that was published when
// it was made, and that source's instances then.
type spillReq struct {
	on   bool
	from int
	base map[string]struct{}
}

// Spill asks the Failover to publish, besides the set of the source it
// publishes now (the active one), the set of the next source after it
// that has an instance: the failover for instances that are listed but
// do not answer — crashed or hung, their records not yet expired — which
// discovery cannot see and a client can (package client asks for it when
// every instance of the set is ejected or failing). The active source's
// instances stay in the set, so a client keeps their breakers and keeps
// probing them; its balancer skips the ejected ones and sends calls to
// the next source's.
//
// Spill(false) publishes the plain set again. The spill also ends by
// itself when the active source changes (its records expired: the next
// source is published anyway; or it came back) and when the active
// source lists an instance it did not list at Spill(true), or one that
// has left since and is listed again: a new or restarted local instance
// gets the callers back. While no later source
// has an instance, the request is held and nothing changes.
//
// Spill(true) reports whether the request is held: false when the
// Failover has one source, no source has an instance, or it is stopped.
// Spill(false) reports false. The request is the Failover's: shared by
// everything subscribed to it (each client gets its own Failover from a
// registry). OnSpill hears each start and end.
func (f *Failover) Spill(on bool) bool {
	select {
	case <-f.stop:
		return false
	default:
	}
	f.pub.Lock()
	defer f.pub.Unlock()
	f.mu.Lock()
	held := false
	switch {
	case !on:
		f.spill = spillReq{}
	case f.spill.on:
		held = true
	case len(f.srcs) > 1:
		if _, active, ok := f.pickLocked(); ok && active >= 0 {
			base := make(map[string]struct{}, len(f.latest[active].Instances))
			for _, s := range f.latest[active].Instances {
				base[s] = struct{}{}
			}
			f.spill, held = spillReq{on: true, from: active, base: base}, true
		}
	}
	f.mu.Unlock()
	f.publishPub()
	return held
}

// Spilling reports whether a Spill(true) is in force (it may have ended by
// itself since: see Spill).
func (f *Failover) Spilling() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spill.on
}

// SpillingTo is the index of the source whose instances are published
// beside the active source's, or -1.
func (f *Failover) SpillingTo() int {
	f.pub.Lock()
	defer f.pub.Unlock()
	return f.spilledTo
}

// OnSpill has fn called each time the source spilled to changes: with the
// active source and the source spilled to, or -1 when the spill ends. If
// the Failover spills already, fn hears it at once. Like OnSwitch's, fn
// runs with the publication order held: it must be quick and must not
// call the Failover's methods other than Active.
func (f *Failover) OnSpill(fn func(active, to int)) {
	f.pub.Lock()
	defer f.pub.Unlock()
	f.hookMu.Lock()
	f.onSpill = append(f.onSpill, fn)
	f.hookMu.Unlock()
	if f.spilledTo >= 0 {
		fn(f.published, f.spilledTo)
	}
}

// spillLocked adds the set of the source spilled to to out, the active
// source's event, and returns the index of that source (-1: none). It
// drops a request that no longer holds (see Spill). mu is held.
func (f *Failover) spillLocked(out sd.Event, active int) (sd.Event, int) {
	if !f.spill.on {
		return out, -1
	}
	if active != f.spill.from || slices.ContainsFunc(out.Instances, func(s string) bool {
		_, ok := f.spill.base[s]
		return !ok
	}) {
		f.spill = spillReq{}
		return out, -1
	}
	if len(out.Instances) < len(f.spill.base) {
		// An instance that left is forgotten: listed again (restarted
		// under the same record) it is new, and ends the spill as such.
		// out is within base, so it is what base keeps.
		base := make(map[string]struct{}, len(out.Instances))
		for _, s := range out.Instances {
			base[s] = struct{}{}
		}
		f.spill.base = base
	}
	for j := active + 1; j < len(f.latest); j++ {
		if ev := f.latest[j]; ev != nil && len(ev.Instances) > 0 {
			// The active source's error stays the event's: the endpointer
			// keeps its last set on an error, as it does unspilled.
			ins := make([]string, 0, len(out.Instances)+len(ev.Instances))
			ins = append(append(ins, out.Instances...), ev.Instances...)
			return sd.Event{Instances: ins, Err: out.Err}, j
		}
	}
	return out, -1
}
