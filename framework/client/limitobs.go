package client

import "github.com/warren-mesh/warren/framework/climit"

// LimitObserver is an Observer that is also given, when a client with a
// concurrency limit is built, a way to read that limit: stats returns the
// limit's state (its current value, the calls in flight, the calls it
// refused) and false once the client is closed. Package metrics reads it
// at every scrape (warren_client_concurrency_limit,
// warren_client_in_flight).
type LimitObserver interface {
	ClientLimit(service string, stats func() (climit.Stats, bool))
}

// tellLimit hands the client's limit to an observer that wants it.
func (c *Client) tellLimit(obs Observer) {
	lo, ok := obs.(LimitObserver)
	if !ok || c.limiter == nil {
		return
	}
	l := c.limiter
	lo.ClientLimit(c.service, func() (climit.Stats, bool) { return l.Stats(), !c.closed.Load() })
}
