package consul

import (
	"slices"
	"time"
)

// hold is the instances an instancer keeps listing, by ID, while the
// agent does not list them yet: after an outage the agent may answer
// before the instances it forgot have registered again (a restarted -dev
// agent, one whose index overtook ours, or another agent whose view is not
// ready yet). Each is kept until its own deadline, one re-register window
// from the answer that began holding it, and never longer: an agent whose
// index for an unlisted service goes back on every timed-out wait would
// otherwise keep it forever, a fresh window at each answer. One the agent
// lists again leaves the hold for good (the agent speaks for it again),
// and may be held again, for a fresh window, by the next outage.
type hold map[string]heldInstance

type heldInstance struct {
	str   string // the instance string go-kit is handed
	until time.Time
}

// add holds every instance of l not held yet until until; those already
// held keep their deadline.
func (h hold) add(l listing, until time.Time) {
	for i, id := range l.ids {
		if _, ok := h[id]; !ok {
			h[id] = heldInstance{str: l.strs[i], until: until}
		}
	}
}

// expire drops the instances whose deadline is not after now and says
// whether there were any.
func (h hold) expire(now time.Time) bool {
	n := len(h)
	for id, hi := range h {
		if !now.Before(hi.until) {
			delete(h, id)
		}
	}
	return len(h) < n
}

// release drops the instances the agent lists again.
func (h hold) release(ids []string) {
	for _, id := range ids {
		delete(h, id)
	}
}

// next is the earliest deadline, or false when nothing is held.
func (h hold) next() (time.Time, bool) {
	var first time.Time
	for _, hi := range h {
		if first.IsZero() || hi.until.Before(first) {
			first = hi.until
		}
	}
	return first, len(h) > 0
}

// with returns l plus the held instances whose IDs it lacks; l itself is
// not written to.
func (l listing) with(h hold) listing {
	if len(h) == 0 {
		return l
	}
	out := listing{ids: slices.Clip(l.ids), strs: slices.Clip(l.strs)}
	have := make(map[string]bool, len(l.ids))
	for _, id := range l.ids {
		have[id] = true
	}
	for id, hi := range h {
		if !have[id] {
			out.ids, out.strs = append(out.ids, id), append(out.strs, hi.str)
		}
	}
	return out
}
