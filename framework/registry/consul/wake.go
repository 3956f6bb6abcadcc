package consul

import "sync"

// agentBack tells the goroutines of one Registry that an agent answers
// again after a failure: the first request to get through (the
// registrar's heartbeat, which retries within one heartbeat interval, or
// any instancer's query) wakes the instancers sleeping out their backoff,
// so they read the agent at once instead of up to WithRetryBackoff's
// maximum later. An instancer that slept on while instances withdrew from
// the returned agent served their closed addresses until it woke (report
// j60b F1: 127 failed calls with two instances, its first read 6 s after
// the agent was back).
type agentBack struct {
	mu   sync.Mutex
	down bool          // a request failed since the last answer
	ch   chan struct{} // closed by the answer that ends down
}

// wait returns a channel closed when a request gets through after a
// failure. Take it before the request whose failure makes the caller
// sleep: an answer between the two is then not missed.
func (a *agentBack) wait() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil {
		a.ch = make(chan struct{})
	}
	return a.ch
}

// failed records a request that did not reach the agent, or found that
// it had forgotten everything (restarted).
func (a *agentBack) failed() {
	a.mu.Lock()
	a.down = true
	a.mu.Unlock()
}

// answered records a request that got through; the first after a
// failure wakes every waiter.
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
