package consul

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// Several agents (WithAddresses). In Consul a registration belongs to the
// agent it was made with: that agent runs its checks and syncs it to the
// servers, and when the agent's node fails every service on it turns
// critical. A Registry given several addresses keeps each registration on
// its home agent (the first address) while that answers; when the agent
// holding it cannot be reached it registers with the next agent that
// answers, and moves back home once home answers again, withdrawing the
// copy it leaves (or, if that agent is still unreachable, remembering to
// withdraw it later: until then Consul shows that copy critical, never
// passing, and reaps it after DeregisterCriticalServiceAfter).

// unreachable reports whether err is a failure to reach the agent at all
// (refused, reset, timed out) rather than an answer from it; only such an
// error moves work to another agent. An error caused by ctx ending is
// neither.
func unreachable(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && statusCode(err) == 0 && !lost(err)
}

// gone decides whether the agent holding reg is gone, after a heartbeat
// failed with err (unreachable). Nothing listening, or a connection cut,
// is an agent gone. A timeout is not, at first: an agent keeps its local
// state locked while it syncs with the servers, so during a leader
// election its API can stall for seconds (measured: check updates past a
// 2 s deadline at every election). Moving then would leave the home copy
// to turn critical while the new one cannot be synced without a leader.
// Only when calls have timed out for a whole check TTL — the home copy is
// critical by then anyway — does the registration move.
func (r *Registry) gone(reg *registration, err error) bool {
	if !timedOut(err) {
		return true
	}
	if reg.slowSince.IsZero() {
		reg.slowSince = time.Now()
	}
	return time.Since(reg.slowSince) >= r.reregisterWindow()
}

// timedOut reports whether err is a call that ran out of time, as opposed
// to one refused or cut.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// failover registers reg with the next agent that takes it, after cause
// made its agent unreachable. It returns the last error when none did.
func (r *Registry) failover(ctx context.Context, reg *registration, cause error) error {
	err := cause
	for step := 1; step < len(r.agents); step++ {
		k := (reg.agent + step) % len(r.agents)
		if err = r.register(ctx, r.agents[k], reg); err != nil {
			continue
		}
		r.logInfo("agent unreachable; registered with another agent", "id", reg.inst.ID,
			"from", r.cfg.addresses[reg.agent], "to", r.cfg.addresses[k], "err", cause)
		if reg.agent == 0 {
			// A stay away from home begins: goHome's spacing of tries
			// is this stay's. One that ended by failing over to home
			// once left its spacing (a minute, say) to the next stay.
			reg.homeFailed, reg.homeAfter = 0, time.Time{}
		}
		reg.stale = addIndex(reg.stale, reg.agent)
		reg.agent = k
		return nil
	}
	return err
}

// goHome moves reg back to the home agent when it lives elsewhere and home
// answers again. The copy it leaves is withdrawn only once the servers
// list the copy this call registered at home as passing (homeListed):
// withdrawing it sooner would leave the instance listed nowhere for that
// moment. Until then both copies exist, which instancers list once (they
// dedupe by ID), and the next heartbeat tries again.
func (r *Registry) goHome(ctx context.Context, reg *registration) {
	if reg.agent == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, r.probeTimeout())
	defer cancel()
	if time.Now().Before(reg.homeAfter) {
		return
	}
	home := r.agents[0]
	mark, err := r.registerMarked(cctx, home, reg)
	if err != nil {
		return
	}
	node, ok := r.homeListed(cctx, home, reg, mark)
	if !ok {
		// Each try writes the home copy again (a Raft write): a home the
		// servers never list — a token that cannot read the catalog — is
		// tried less and less often, and said so.
		reg.homeFailed++
		if reg.homeFailed >= 3 { // the first tries at every beat: a sync may just be slow
			reg.homeAfter = time.Now().Add(min(r.beatInterval()<<min(reg.homeFailed-2, 10), 5*time.Minute))
		}
		if reg.homeFailed == 3 {
			r.logErr("home agent answers but the servers do not list the copy registered there; still trying, less often (can the token read the catalog: service and node read?)",
				"id", reg.inst.ID, "home", r.cfg.addresses[0])
		}
		return
	}
	r.logInfo("home agent answers again; registration moved back", "id", reg.inst.ID,
		"from", r.cfg.addresses[reg.agent], "to", r.cfg.addresses[0])
	reg.stale = addIndex(reg.stale, reg.agent)
	reg.agent = 0
	reg.homeFailed, reg.homeAfter = 0, time.Time{}
	reg.mark, reg.markedAt, reg.listed, reg.node = mark, time.Now(), true, node // homeListed saw it
	r.withdrawStale(ctx, reg)
}

// homeListed waits, until ctx ends, for the servers to list reg passing
// with mark in its checks' notes — the copy the home agent synced after
// the register call that made mark, which no other copy carries — and
// returns the node they list it on. It asks the servers, not the agent
// (GET /v1/agent/self needs agent:read, which a service's token has no
// other use for). The agent syncs a new
// registration to the servers a moment after it accepted it. A passing
// copy on node without the mark is not enough: a restarted agent's node
// turns passing as soon as it rejoins, so the copy it synced before it
// went down is listed passing again, and its first sync may then write
// the state it restored from disk (checks critical: their TTL ran out
// while it was down) over it.
func (r *Registry) homeListed(ctx context.Context, a *api.Client, reg *registration, mark string) (node string, ok bool) {
	var index uint64
	for range 10 { // each a blocking query: normally one or two
		deadline, _ := ctx.Deadline()
		wait := time.Until(deadline)
		if wait < 10*time.Millisecond {
			return "", false
		}
		entries, meta, err := listedEntries(ctx, a, reg.inst, true, index, wait)
		if err != nil {
			return "", false
		}
		if e := markedEntry(entries, reg.inst.ID, mark); e != nil {
			return e.Node.Node, true
		}
		index = meta.LastIndex
	}
	return "", false
}

// listedEntries asks the servers, through agent a, for the entries of
// inst's ID (passing ones only if passing); with index > 0 it is a
// blocking query that returns when they change or wait has passed.
func listedEntries(ctx context.Context, a *api.Client, inst registry.Instance, passing bool, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	q := &api.QueryOptions{Filter: fmt.Sprintf("Service.ID == %q", inst.ID), WaitIndex: index, WaitTime: wait}
	return a.Health().Service(inst.Name, "", passing, q.WithContext(ctx))
}

// markedEntry returns the entry of entries that holds service id with
// mark in the notes of one of its own checks, or nil.
func markedEntry(entries []*api.ServiceEntry, id, mark string) *api.ServiceEntry {
	i := slices.IndexFunc(entries, func(e *api.ServiceEntry) bool {
		return e.Node != nil && e.Service != nil && e.Service.ID == id &&
			slices.ContainsFunc(e.Checks, func(c *api.HealthCheck) bool {
				return c.ServiceID == id && strings.Contains(c.Notes, mark)
			})
	})
	if i < 0 {
		return nil
	}
	return entries[i]
}

// awayCopies adds, for a registration being withdrawn while away from
// home, the home agent to the copies to withdraw: each try to move back
// registered a copy there, which the move would have kept.
func awayCopies(reg *registration) {
	if reg.agent != 0 {
		reg.stale = addIndex(reg.stale, 0)
	}
}

// withdrawStale withdraws the copies of reg left on agents it moved away
// from, forgetting each once its agent answered.
func (r *Registry) withdrawStale(ctx context.Context, reg *registration) {
	reg.stale = slices.DeleteFunc(reg.stale, func(k int) bool {
		if k == reg.agent {
			return true
		}
		cctx, cancel := context.WithTimeout(ctx, r.probeTimeout())
		defer cancel()
		return r.deregister(cctx, r.agents[k], reg.inst.ID) == nil
	})
}

// probeTimeout bounds the calls to agents other than the one holding a
// registration, so an agent that swallows packets cannot delay the
// heartbeat that keeps the registration passing.
func (r *Registry) probeTimeout() time.Duration {
	return min(r.cfg.requestTimeout, r.beatInterval()/3)
}

func (r *Registry) countRereg() {
	r.mu.Lock()
	r.regs.Reregistered()
	r.mu.Unlock()
}

func addIndex(s []int, k int) []int {
	if slices.Contains(s, k) {
		return s
	}
	return append(s, k)
}
