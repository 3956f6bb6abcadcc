package consul

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// withdrawSettle is how long the servers get to drop a withdrawn instance
// through the agent's own sync before the registry removes it from the
// catalog itself. The agent syncs a moment (milliseconds) after it took
// the deregistration.
const withdrawSettle = time.Second

// confirmWithdrawn makes sure the servers drop inst once agent a has. An
// agent syncs a deregistration to the servers a moment after it took it;
// when that sync fails (the agent's server just died, the servers refuse
// writes) the agent retries it at its next change, at a new leader, or at
// its next full sync, a minute or more later — and the instance's
// heartbeat, the change that heals a missed registration, has stopped:
// the instance could stay in the catalog, passing, while the process
// drains and exits. So when the servers still list it on node (where
// they listed this registration's copy: confirmListed) after
// withdrawSettle, it is deregistered from the catalog directly (Consul
// allows that with the service's write permission; the agent no longer
// holds it, so its anti-entropy agrees). Without a node — the servers
// were never seen to list the copy — there is nothing to look for.
// Bounded by ctx; what it could not do is logged.
//
// The copy looked for is this registration's: with checks, the entry
// whose check notes carry mark (the last register call's), or that has
// no check of its own left (withdrawnCopy: what a withdrawal the agent
// synced only half of leaves). Another process on the same agent may
// register the same ID (a restart on the same address) and, once the
// withdrawal dropped its copy from the agent too, register it again at
// its next beat; the servers then list that copy on node. It is not
// deleted: an entry with another mark is not ours, and before deleting,
// the agent is asked whether it holds the ID again — if it does, the
// entry on node is (or is about to be) that registration's, which the
// agent believes in sync and would not restore until its next full sync.
func (r *Registry) confirmWithdrawn(ctx context.Context, a *api.Client, inst registry.Instance, node, mark string) {
	if node == "" {
		// The registrar had not seen the servers list this call's copy
		// (a withdrawal soon after Register, or after a re-register whose
		// new definition the servers never got): what they list is on the
		// agent's own node, under this ID, whatever its mark. A copy of
		// another registration of the ID is protected below by the agent
		// check. Two loaded verifications saw Close return with the
		// servers still listing such a copy.
		name, err := r.agentNode(ctx, a)
		if err != nil {
			r.logErr("cannot confirm the servers dropped the withdrawn instance: the agent's node is unknown", "id", inst.ID, "err", err)
			return
		}
		node, mark = name, ""
	}
	start := time.Now()
	bo := backoff.New(r.cfg.backoffMin, withdrawSettle)
	var index uint64
	var last error
	for ctx.Err() == nil {
		wait := withdrawSettle
		if index == 0 {
			wait = 0 // the first look: the sync has usually landed already
		}
		listed, nextIndex, err := r.listedOn(ctx, a, inst, node, mark, index, wait)
		switch {
		case permanent(err):
			// A token that may not read the catalog: asking again
			// would only hold the shutdown until ctx ends.
			r.logErr("cannot confirm the servers dropped the withdrawn instance", "id", inst.ID, "err", err)
			return
		case err != nil:
			last = err
			index = 0
			backoff.Sleep(ctx, bo.Next())
			continue
		case !listed:
			return
		}
		index = nextIndex
		if time.Since(start) < withdrawSettle {
			continue
		}
		held, err := r.agentHolds(ctx, a, inst.ID)
		if err != nil {
			if permanent(err) {
				r.logErr("cannot confirm the servers dropped the withdrawn instance", "id", inst.ID, "err", err)
				return
			}
			last = err
			backoff.Sleep(ctx, bo.Next())
			continue
		}
		if held {
			r.logInfo("the agent holds the withdrawn instance's ID again (another registration of it); leaving the servers' entry to it",
				"id", inst.ID, "node", node)
			return
		}
		dereg := &api.CatalogDeregistration{Node: node, ServiceID: inst.ID}
		if _, err := a.Catalog().Deregister(dereg, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			if permanent(err) {
				r.logErr("the servers still list the withdrawn instance and refused to remove it", "id", inst.ID, "node", node, "err", err)
				return
			}
			last = err
			backoff.Sleep(ctx, bo.Next())
			continue
		}
		r.logInfo("the servers still listed the instance the agent had withdrawn (its sync failed); removed it from the catalog",
			"id", inst.ID, "node", node)
		index = 0
	}
	r.logErr("could not confirm the servers dropped the withdrawn instance; they may list it until the agent's next sync",
		"id", inst.ID, "err", fmt.Errorf("%w (last error: %v)", ctx.Err(), last))
}

// listedOn asks the servers (through a) whether they list inst on node,
// with mark when the Registry's definitions carry one (they have checks)
// and mark is known; else by its ID.
// With index > 0 it is a blocking query that returns when the answer
// changes or wait has passed.
func (r *Registry) listedOn(ctx context.Context, a *api.Client, inst registry.Instance, node, mark string, index uint64, wait time.Duration) (bool, uint64, error) {
	qctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout+wait)
	defer cancel()
	entries, meta, err := listedEntries(qctx, a, inst, false, index, wait)
	if err != nil {
		return false, 0, err
	}
	entries = slices.DeleteFunc(entries, func(e *api.ServiceEntry) bool { return e.Node == nil || e.Node.Node != node })
	if len(r.cfg.checks) > 0 && mark != "" {
		listed := slices.ContainsFunc(entries, func(e *api.ServiceEntry) bool { return withdrawnCopy(e, inst.ID, mark) })
		return listed, meta.LastIndex, nil
	}
	listed := slices.ContainsFunc(entries, func(e *api.ServiceEntry) bool {
		return e.Service != nil && e.Service.ID == inst.ID
	})
	return listed, meta.LastIndex, nil
}

// withdrawnCopy reports whether e is the copy of service id that the
// registration marked mark left: one of its own checks carries mark, or
// none of its own checks is left. The agent syncs a withdrawal as two
// deletions, the service's and then its check's, and tries the second
// when the first failed; servers that take writes again between the two
// (a leader elected in that moment) list the service without its check,
// and so without a mark, until the agent's next full sync. Looking only
// for the mark, Close took that for "dropped" and returned at its first
// look. Another registration's copy still has its own mark: the agent
// syncs a service and its checks in one request.
func withdrawnCopy(e *api.ServiceEntry, id, mark string) bool {
	if e.Node == nil || e.Service == nil || e.Service.ID != id {
		return false
	}
	own := false
	for _, c := range e.Checks {
		if c.ServiceID != id {
			continue
		}
		if strings.Contains(c.Notes, mark) {
			return true
		}
		own = true
	}
	return !own
}

// agentNode asks agent a for its node name (api's Agent.NodeName has no
// context: an agent that stopped answering would hold Close).
func (r *Registry) agentNode(ctx context.Context, a *api.Client) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	var self map[string]map[string]any
	if _, err := a.Raw().Query("/v1/agent/self", &self, (&api.QueryOptions{}).WithContext(cctx)); err != nil {
		return "", err
	}
	name, _ := self["Config"]["NodeName"].(string)
	if name == "" {
		return "", fmt.Errorf("/v1/agent/self names no node")
	}
	return name, nil
}

// agentHolds asks agent a whether it holds service id.
func (r *Registry) agentHolds(ctx context.Context, a *api.Client, id string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	_, _, err := a.Agent().Service(id, (&api.QueryOptions{}).WithContext(cctx))
	switch {
	case err == nil:
		return true, nil
	case statusCode(err) == http.StatusNotFound:
		return false, nil
	default:
		return false, err
	}
}
