package retry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// errNoHedge is what a hedge timer reports when it sent nothing (the
// budget held no more than its hedge reserve, recent hedges were needless,
// or the caller had gone).
var errNoHedge = errors.New("retry: no hedge sent")

// errPanicked is the cause one attempt of a hedged pair is cancelled with
// when the other panicked: the call is over, its outcome the panic, and
// the cancelled attempt says nothing about its instance (it wraps
// ErrHedgeUnneeded, so balancer.Target records nothing for it).
var errPanicked = fmt.Errorf("retry: the other attempt panicked (%w)", ErrHedgeUnneeded)

// A hedge is needless when the attempt it hedged answered first: the
// slowness was not that attempt's instance's, and another instance was no
// faster. During a machine-wide stall (a loaded host's processes all
// paused together) nearly every hedge is needless, and hedging only adds
// load to the stall. So needless hedges are capped at needlessHedgeRatio
// of requests plus needlessHedgeBurst: every hedge takes an allowance
// that is given back unless the hedge turns out needless. Hedges that
// win — around a hung or slow instance — are never held back by it. At
// the p99 a steady service hedges ~1 % of its calls, a fifth of the
// ratio.
const (
	needlessHedgeRatio = 0.05
	needlessHedgeBurst = 10
)

// DefaultHedgeFloor is the shortest wait before an idempotent or keyed
// call is hedged: on a loaded machine a few milliseconds of scheduling
// delay are normal, and hedging them would only add load.
const DefaultHedgeFloor = 10 * time.Millisecond

// WithHedging sets when an attempt of an idempotent or keyed call that has
// not answered is hedged — a second attempt sent beside it, to another
// instance, the first answer winning and the other attempt cancelled: after
// the p99 of the attempts the policy saw in the last 10–20 s (the histogram
// the adaptive deadline reads), never sooner than floor. On by default with
// DefaultHedgeFloor. There is no hedge until 20 attempts have been seen,
// for the last attempt, when the attempt's own deadline would come first,
// when the budget holds no more than its hedge reserve (a hedge spends a
// token like a retry, but leaves half the burst to retries), or while
// needless hedges — the attempt they hedged answered first — are over 5 %
// of requests (a burst of 10 aside), as in a machine-wide stall. It
// needs the latency the adaptive deadline learns: WithoutAdaptiveTimeout
// turns hedging off too.
func WithHedging(floor time.Duration) Option {
	return func(p *Policy) error {
		if floor <= 0 {
			return fmt.Errorf("retry.WithHedging(%s): must be positive", floor)
		}
		p.hedgeFloor = floor
		return nil
	}
}

// WithoutHedging turns hedging off: a slow attempt is only cut by its
// deadline and then retried.
func WithoutHedging() Option { return func(p *Policy) error { p.hedgeFloor = 0; return nil } }

// hedgeDelay is how long attempt n may go unanswered before it is hedged
// (0: it is not).
func (p *Policy) hedgeDelay(n int, idempotent bool) time.Duration {
	if p.hedgeFloor <= 0 || !idempotent || p.adaptive == nil || n >= p.maxAttempts {
		return 0
	}
	p99 := p.adaptive.latencyP99()
	if p99 <= 0 {
		return 0 // too few attempts seen to know what is slow
	}
	hd := max(p99, p.hedgeFloor)
	if d := p.timeoutFor(n, idempotent); d > 0 && hd >= d {
		return 0 // the deadline cuts the attempt first; a retry follows
	}
	return hd
}

// tryHedged runs attempt n and, if it has not returned after hd and the
// budget pays for it, attempt n+1 beside it (the hedge, in a goroutine this
// function waits for). The first success wins and the other attempt is
// cancelled: a first attempt outpaced by its hedge with ErrOutpaced, a
// hedge no longer needed with ErrHedgeUnneeded. A first attempt that fails
// with an answer (Fatal) decides the call; one that fails otherwise waits
// for the hedge, which stands for its retry. It returns (nil, nil) on
// success, (nil, err) when only attempt n counts, and both errors when
// both attempts ran and failed.
//
// A panic in either attempt comes out of tryHedged, on the caller's
// goroutine, as it does from an attempt that is not hedged (see hedge.wait).
func (p *Policy) tryHedged(ctx context.Context, n int, hd time.Duration, attempt func(context.Context, int) error) (first, last error) {
	pctx, cancelP := context.WithCancelCause(ctx)
	h := &hedge{}
	returned := false // attempt n returned rather than panicked
	defer func() {
		cancelP(nil)
		if !returned && !h.timer.Stop() {
			// Attempt n panicked with its hedge out (or its timer
			// firing): the call is over, so the hedge is called off and
			// waited for, as on every other way out; its own panic, if
			// any, gives way to the one under way.
			h.callOff(errPanicked)
			h.ran.Wait()
		}
	}()
	h.ran.Add(1)
	h.timer = time.AfterFunc(hd, func() {
		defer h.ran.Done()
		defer func() {
			// The hedge runs on the timer's goroutine, where a panic
			// nobody recovers ends the process. Keep it for wait, which
			// panics with it on the caller's goroutine — as the same
			// panic in an attempt that is not hedged would come out of
			// Do, to be recovered (or not) by the caller: the transports
			// recover handler panics, and http.ErrAbortHandler stays
			// what it was. Attempt n, whose outcome no longer matters,
			// is cancelled so the caller gets it without waiting.
			if v := recover(); v != nil {
				h.panicked, h.value = true, v
				cancelP(errPanicked)
			}
		}()
		hctx, ok := h.start(ctx)
		if !ok {
			h.err = errNoHedge
			return
		}
		defer h.release()
		if !p.payHedge() {
			h.err = errNoHedge
			return
		}
		err := p.try(hctx, n+1, p.timeoutFor(n+1, true), attempt)
		if err == nil {
			cancelP(ErrOutpaced)
		}
		if err == nil || !errors.Is(context.Cause(hctx), ErrHedgeUnneeded) {
			p.needless.refund() // not needless: it won, or stood for a retry
		}
		h.err = err
	})
	err := p.try(pctx, n, p.timeoutFor(n, true), attempt)
	returned = true
	if h.timer.Stop() {
		return nil, err // answered (or failed) before a hedge was due
	}
	switch {
	case err == nil:
		h.callOff(ErrHedgeUnneeded)
		h.wait()
		return nil, nil
	case errors.Is(context.Cause(pctx), ErrOutpaced):
		h.wait() // the hedge succeeded: that is what cancelled attempt n
		return nil, nil
	case ctx.Err() == nil && p.classify(err) == Fatal:
		// An answer (a 404, say) is the call's outcome; a hedge that
		// already succeeded is as good.
		h.callOff(ErrHedgeUnneeded)
		if herr := h.wait(); herr == nil {
			return nil, nil
		}
		return nil, err
	}
	switch herr := h.wait(); {
	case herr == nil:
		return nil, nil
	case herr == errNoHedge:
		return nil, err
	default:
		return err, herr
	}
}

// hedge is the second attempt of one tryHedged call. Its context is made
// only when its timer fires: nearly every call answers before that, and a
// context made up front for each would cost two allocations and a lock of
// the caller's context to hang it there and another to take it off.
type hedge struct {
	timer  *time.Timer    // fires the hedge
	ran    sync.WaitGroup // done when the timer's func has returned
	mu     sync.Mutex
	cancel context.CancelCauseFunc // the hedge's context's, once made
	off    error                   // why it was called off before it was made
	err    error                   // its outcome (errNoHedge: none sent); read after ran

	panicked bool // the hedge panicked, with value; read after ran
	value    any
}

// start makes the hedge's context, unless the hedge was called off or the
// caller has gone.
func (h *hedge) start(ctx context.Context) (context.Context, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.off != nil || ctx.Err() != nil {
		return nil, false
	}
	hctx, cancel := context.WithCancelCause(ctx)
	h.cancel = cancel
	return hctx, true
}

// callOff cancels the hedge with cause, or keeps it from being sent.
func (h *hedge) callOff(cause error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cancel != nil {
		h.cancel(cause)
		return
	}
	h.off = cause
}

// release frees the hedge's context once its attempt has returned.
func (h *hedge) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancel(nil)
}

// wait returns the hedge's outcome once the timer's func has returned, or
// panics with the value the hedge panicked with.
func (h *hedge) wait() error {
	h.ran.Wait()
	if h.panicked {
		panic(h.value)
	}
	return h.err
}

// payHedge takes what a hedge costs — a needless-hedge allowance and a
// budget token above the hedge reserve — or nothing, counting the refusal.
func (p *Policy) payHedge() bool {
	if !p.needless.spend(0) {
		p.hedgesRefused.Add(1)
		return false
	}
	if p.budget != nil && !p.budget.withdrawHedge() {
		p.needless.refund()
		p.hedgesRefused.Add(1)
		return false
	}
	p.hedges.Add(1)
	return true
}

// HedgesRefused returns how many hedges were due but not sent: the budget
// was down to its hedge reserve, or recent hedges were needless.
func (p *Policy) HedgesRefused() int64 { return p.hedgesRefused.Load() }
