package consul

import (
	"context"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/backoff"
)

// The agent takes a registration at once and syncs it to the servers a
// moment later. A sync that fails — the servers electing a leader, the
// agent's server just gone — the agent retries only at its next change
// or full sync (a minute or more; Consul's agent/ae). Every TTL update is
// such a change (the agent then syncs whatever it has not), but the
// heartbeat comes a third of a TTL later (3.3 s by default, 10 s with a
// 30 s TTL), and callers cannot find the instance until then. So after
// each register call the keep loop asks the servers whether they list the
// copy it made (its mark) and, until they do, beats every confirmInterval
// (less and less often while they fail to answer: confirmDelay)
// instead of every TTL/3.
const (
	// confirmInterval is how often the keep loop beats and asks while
	// the servers have not listed the registration yet.
	confirmInterval = 500 * time.Millisecond
	// confirmMaxInterval caps the backoff of questions the servers keep
	// failing to answer (confirmDelay).
	confirmMaxInterval = 5 * time.Second
	// maxUnlisted bounds the answers without the registration that keep
	// the loop asking: a token that may not read the catalog gets such
	// answers forever, and must not cost two calls a second forever.
	maxUnlisted = 20
)

// confirmListed reports whether the servers list reg's last registration,
// asking them through the holding agent until they have. A question they
// cannot answer (no leader yet) is asked again after confirmDelay; after
// maxUnlisted answers without it, it stops asking and says so.
func (r *Registry) confirmListed(ctx context.Context, reg *registration) bool {
	if reg.listed {
		return true
	}
	a := r.agents[reg.agent]
	cctx, cancel := context.WithTimeout(ctx, r.probeTimeout())
	defer cancel()
	entries, meta, err := listedEntries(cctx, a, reg.inst, false, 0, 0)
	if err != nil {
		if reg.confirmErrs++; reg.confirmErrs == 1 && ctx.Err() == nil {
			r.logErr("cannot ask the servers whether they list the registration; asking less and less often until they answer",
				"id", reg.inst.ID, "err", err)
		}
		return false
	}
	if reg.confirmErrs > 0 {
		r.logInfo("the servers answer again whether they list the registration",
			"id", reg.inst.ID, "failed", reg.confirmErrs)
		reg.confirmErrs = 0
	}
	// The entry carrying this call's mark is the holding agent's copy,
	// on its node. Without checks the definition carries no mark: the ID
	// must do, and the node is known only while one node lists it.
	var found *api.ServiceEntry
	if len(r.cfg.checks) == 0 {
		var ids []*api.ServiceEntry
		for _, e := range entries {
			if e.Node != nil && e.Service != nil && e.Service.ID == reg.inst.ID {
				ids = append(ids, e)
			}
		}
		if len(ids) == 1 {
			found = ids[0]
		}
		reg.listed = len(ids) > 0
	} else {
		found = markedEntry(entries, reg.inst.ID, reg.mark)
		reg.listed = found != nil
	}
	if found != nil {
		reg.node = found.Node.Node
	}
	if reg.listed {
		reg.unlisted = 0
		return true
	}
	if meta.ResultsFilteredByACLs {
		// Consul hides entries from this token (it may not read the
		// node, say): an answer without the copy proves nothing, now or
		// at any later beat, and Deregister cannot look for it either.
		r.logErr("cannot confirm the servers list the registration: Consul hides entries from this token (ACLs); "+
			"it needs node:read on the agent's node to confirm registrations and withdrawals",
			"id", reg.inst.ID)
		reg.listed, reg.unlisted = true, 0
		return true
	}
	if reg.unlisted++; reg.unlisted >= maxUnlisted {
		r.logErr("the servers do not list the registration the agent took; no longer asking (can the token read the catalog?)",
			"id", reg.inst.ID, "since", reg.markedAt)
		reg.listed, reg.unlisted = true, 0 // the heartbeat goes on
	}
	return reg.listed
}

// confirmDelay is how soon the keep loop beats and asks again while reg is
// not confirmed: confirmInterval while the servers answer (the answer
// lacked it), doubling per question they failed to answer in a row up to
// confirmMaxInterval. A question that keeps failing (no leader for long,
// an endpoint the agent blocks) cost two calls a second forever before.
func (r *Registry) confirmDelay(reg *registration) time.Duration {
	if reg.confirmErrs == 0 {
		return confirmInterval
	}
	return backoff.Nth(confirmInterval, confirmMaxInterval, reg.confirmErrs+1)
}
