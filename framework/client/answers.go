package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// answers keeps, per instance, a count of the attempts that succeeded and
// whether its latest finished attempt did, so that a call that ran out of
// time can tell where its time went (report j50a 1): on an instance that
// answered nothing while the call waited on it (stopped, hung, cut off:
// an instance failure, which ejection and retries deal with) while
// another instance answers, or on one that answered other calls meanwhile
// (slow: the service is behind, the concurrency limit's business).
// Counting costs a map read and an atomic addition per attempt; no lock
// on the call path but when an instance is first seen.
type answers struct {
	m       sync.Map // *balancer.Target → *answered
	n       atomic.Int64
	sweepAt atomic.Int64 // entries at which retired instances are dropped
	mu      sync.Mutex   // one sweep at a time
}

// answered is one instance's record.
type answered struct {
	count atomic.Uint64
	ok    atomic.Bool // its latest finished attempt succeeded
}

// record notes an attempt's end on one instance.
func (a *answered) record(err error) {
	if err == nil {
		a.count.Add(1)
		if !a.ok.Load() {
			a.ok.Store(true)
		}
	} else if a.ok.Load() {
		a.ok.Store(false)
	}
}

// of returns t's record.
func (a *answers) of(t *balancer.Target) *answered {
	if v, ok := a.m.Load(t); ok {
		return v.(*answered)
	}
	v, loaded := a.m.LoadOrStore(t, new(answered))
	if !loaded && a.n.Add(1) >= max(64, a.sweepAt.Load()) {
		a.sweep()
	}
	return v.(*answered)
}

// sweep drops the records of instances that left the set; it runs when
// the map has doubled since the last sweep, so churn costs O(1) a target.
func (a *answers) sweep() {
	if !a.mu.TryLock() {
		return
	}
	defer a.mu.Unlock()
	a.m.Range(func(k, _ any) bool {
		if k.(*balancer.Target).Retired() {
			a.m.Delete(k)
			a.n.Add(-1)
		}
		return true
	})
	a.sweepAt.Store(2 * a.n.Load())
}

// answering reports whether an instance of the set answered its latest
// attempt.
func (c *Client) answering() bool {
	for _, t := range c.ep.Targets() {
		if v, ok := c.answers.m.Load(t); ok && v.(*answered).ok.Load() {
			return true
		}
	}
	return false
}

// callNote is what the attempts of one call learnt: about their
// timeouts, and which instances they failed on.
type callNote struct {
	silent atomic.Int32 // attempts timed out on an instance that answered nothing meanwhile
	slow   atomic.Int32 // attempts timed out on an instance that answered other calls meanwhile
	failed failedOn     // where attempts failed: retries go elsewhere (elsewhere)
	// tries counts the attempts and failures those that failed, to tell
	// a retry (warren_client_retries_total: every earlier attempt had
	// failed) from a hedge (warren_client_hedges_total: one still ran
	// beside it), report j57b F9. The policy's attempt number cannot: it
	// stays put for the attempts that spend none (a refusal, a Pending
	// answer). failures moves only on the failure path: a call that
	// succeeds at once pays nothing more than before.
	tries    atomic.Int32
	failures atomic.Int32
}

// attempt kinds, as begin tells them.
const (
	firstAttempt = iota
	retryAttempt
	hedgeAttempt
)

// begin counts an attempt and says which kind it is. A retry starts once
// the attempt before it has returned its failure (ended counted it); a
// hedge starts while an earlier attempt still runs.
func (n *callNote) begin() int {
	t := n.tries.Add(1)
	switch {
	case t == 1:
		return firstAttempt
	case n.failures.Load() >= t-1:
		return retryAttempt
	}
	return hedgeAttempt
}

// ended counts an attempt that failed; call it before the attempt
// returns its error, so the retry it may cause sees it.
func (n *callNote) ended(err error) {
	if err != nil {
		n.failures.Add(1)
	}
}

// hedgeCancelled reports whether the attempt was cancelled because a
// hedge or the attempt it hedged answered first: it says nothing of its
// instance.
func hedgeCancelled(ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	cause := context.Cause(ctx)
	return errors.Is(cause, retry.ErrHedgeUnneeded) || errors.Is(cause, retry.ErrOutpaced)
}

// attemptTimedOut reports whether an attempt ended by a deadline (its own
// or the caller's), not by a hedge's cancel.
func attemptTimedOut(ctx context.Context, err error) bool {
	switch {
	case err == nil, hedgeCancelled(ctx):
		return false
	case ctx.Err() != nil:
		return ctx.Err() == context.DeadlineExceeded
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// limitOutcome is what a call tells the concurrency limit. climit.Classify
// takes a deadline for the service being behind; but when every attempt
// of the call that timed out did so on an instance that answered nothing
// while it waited, and another instance answers its calls, the
// time went to a failed instance (report j50a 1: two of three instances
// stopped cut the limit from 500 to its floor 20 in seconds, and the
// limit then refused the calls the healthy one could take). Such a call
// neither cuts nor raises the limit, and a call that succeeded elsewhere
// after such an attempt gives no round-trip sample. A deadline on an
// instance that answered others meanwhile, an overload answer, or a
// service that answered nothing at all still cut it.
func (c *Client) limitOutcome(err error, n *callNote) climit.Outcome {
	o := climit.Classify(err)
	if n == nil || n.silent.Load() == 0 || n.slow.Load() != 0 {
		return o
	}
	switch {
	case o == climit.Success:
		return climit.Ignored
	case o == climit.Dropped && !errors.Is(err, svcerr.ErrOverloaded) && c.answering():
		return climit.Ignored
	}
	return o
}
