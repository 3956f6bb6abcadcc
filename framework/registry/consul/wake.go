package consul

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

// agentBack is how the instancers of one Registry wait for an agent that
// stopped answering: an instancer whose query could not reach it (or
// whose servers could not answer) records the failure, and the first
// failure starts one probe per Registry (probeAgent) that asks once a
// second whether the servers have a leader again; when they do, every
// instancer sleeping out its backoff is woken and reads at once, instead
// of up to WithRetryBackoff's maximum later. An instancer that slept on
// while instances withdrew from the returned agent served their closed
// addresses until it woke (report j60b F1: 127 failed calls with two
// instances, its first read 6 s after the agent was back; r61a N1: the
// same through warren nginx, which only discovers).
type agentBack struct {
	mu   sync.Mutex
	down bool          // a request failed since the last answer
	ch   chan struct{} // closed by the answer that ends down
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

// agentProbeEvery is how often a Registry asks whether the agent is back
// while its instancers' queries fail: one cheap question a second per
// Registry, not per instancer, and none while the agent answers.
const agentProbeEvery = time.Second

// agentFailed records a failed query; the first failure since the last
// answer starts the probe that ends the Registry's wait for the agent.
// Callers are goroutines the Registry owns (r.wg is above zero).
func (r *Registry) agentFailed() {
	if r.back.failed() {
		r.wg.Add(1)
		go r.probeAgent(r.ctx)
	}
}

// probeAgent asks the agents in turn, once per agentProbeEvery, for the
// servers' leader until one names it (then discovery's queries will be
// answered: it wakes the instancers) or the Registry closes.
func (r *Registry) probeAgent(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(agentProbeEvery)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
		leader, err := r.agents[i%len(r.agents)].Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(cctx))
		cancel()
		if err == nil && leader != "" {
			r.back.answered()
			return
		}
	}
}
