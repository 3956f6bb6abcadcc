package consul

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// agentBack is how the instancers of one Registry that query one
// datacenter wait for an agent that stopped answering: an instancer whose
// query could not reach it (or whose servers could not answer) records the
// failure, and the first failure starts one probe per Registry and
// datacenter (probeAgent) that asks once a second whether the servers of
// that datacenter have a leader again; when they do, every instancer of
// the datacenter sleeping out its backoff is woken and reads at once,
// instead of up to WithRetryBackoff's maximum later. An instancer that slept on
// while instances withdrew from the returned agent served their closed
// addresses until it woke (report j60b F1: 127 failed calls with two
// instances, its first read 6 s after the agent was back; r61a N1: the
// same through warren nginx, which only discovers).
type agentBack struct {
	mu    sync.Mutex
	down  bool          // a request failed since the last answer
	ch    chan struct{} // closed by the answer that ends down
	users int           // running instancers of the datacenter (join, leave)
}

// leave is an instancer of the datacenter ending.
func (a *agentBack) leave() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.users--
}

// wanted reports whether an instancer of the datacenter still runs; when
// none does it ends the wait, so the next failure starts a probe again.
func (a *agentBack) wanted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.users > 0 {
		return true
	}
	a.down = false
	return false
}

// wait returns a channel closed when the agent is known to answer again.
// Take it before the request whose failure makes the caller sleep: an
// answer between the two is then not missed.
func (a *agentBack) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil {
		a.ch = make(chan struct{})
	}
	return a.ch
}

// failed records a query that did not reach the agent or its servers. It
// reports whether this failure is the first since the last answer.
func (a *agentBack) failed() (first bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	first = !a.down
	a.down = true
	return first
}

// answered records that the agent answers; the first time after a
// failure it wakes every waiter.
func (a *agentBack) answered() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.down {
		return
	}
	a.down = false
	if a.ch != nil {
		close(a.ch)
		a.ch = nil
	}
}

// agentBacks is a Registry's agentBack per datacenter its instancers
// query ("" for the agent's own). One for all used to ask the agent for
// its own datacenter's leader, which it names at once while another
// datacenter fails ("No path to datacenter": unknown, or its servers all
// down): an instancer of that datacenter was woken about once a second,
// its backoff defeated, and every other instancer in backoff with it.
type agentBacks struct {
	mu sync.Mutex
	m  map[string]*agentBack
}

// join returns the agentBack of datacenter dc for an instancer starting,
// which calls its leave when it ends.
func (b *agentBacks) join(dc string) *agentBack {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[string]*agentBack{}
	}
	a := b.m[dc]
	if a == nil {
		a = &agentBack{}
		b.m[dc] = a
	}
	a.mu.Lock()
	a.users++
	a.mu.Unlock()
	return a
}

// agentProbeEvery is how often a Registry asks whether the agent is back
// while its instancers' queries fail: one cheap question a second per
// Registry, not per instancer, and none while the agent answers.
const agentProbeEvery = time.Second

// agentFailed records a failed query to datacenter dc, whose instancers
// wait on back; the first failure since the last answer starts the probe
// that ends their wait. Callers are goroutines the Registry owns (r.wg is
// above zero).
func (r *Registry) agentFailed(dc string, back *agentBack) {
	if back.failed() {
		r.wg.Add(1)
		go r.probeAgent(r.ctx, dc, back)
	}
}

// probeAgent asks the agents in turn, once per agentProbeEvery, for the
// leader of datacenter dc's servers until one names it (then discovery's
// queries there will be answered: it wakes back's instancers), no
// instancer of dc runs any more (a datacenter that never answers would
// be asked forever), or the Registry closes. The agent's own datacenter's
// leader would say nothing of dc's.
func (r *Registry) probeAgent(ctx context.Context, dc string, back *agentBack) {
	defer r.wg.Done()
	t := time.NewTicker(agentProbeEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !back.wanted() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
		q := &api.QueryOptions{Datacenter: dc}
		leader, err := r.agents[i%len(r.agents)].Status().LeaderWithQueryOptions(q.WithContext(cctx))
		cancel()
		if err == nil && leader != "" {
			back.answered()
			return
		}
	}
}
