// Package retry runs a call again when it failed in a way another attempt
// can fix, without turning an outage into a retry storm.
//
// It replaces go-kit's lb.Retry, which shares one timeout across all
// attempts, retries at once with no backoff, reports a bare context error
// when that timeout fires (dropping the attempts' errors), has no Unwrap,
// and starts a goroutine per attempt. Here:
//
//   - each attempt of a call that may be retried after a timeout gets its
//     own deadline inside the caller's ctx (whose deadline bounds the whole
//     call): by default one that adapts to the latency the policy observes
//     (4 × p99, 250 ms–2 s), so a hung instance costs a few multiples of
//     the normal p99 with no tuning;
//   - an idempotent or keyed call whose attempt has not answered after the
//     p99 of the attempts seen (≥ 10 ms) is hedged: a second attempt goes
//     to another instance beside the first, the first answer wins and the
//     other attempt is cancelled, and the hedge spends a retry token —
//     only while the budget holds more than its hedge reserve (half the
//     burst), so hedges never take the tokens retries need, and hedges
//     that prove needless (the attempt they hedged answered first, as in
//     a machine-wide stall) are capped at 5 % of requests;
//   - attempts are spaced by exponential backoff with jitter;
//   - a Budget shared by all calls of a client caps retries to a ratio of
//     requests, so a failing dependency sees ~1.2× load, not 3×, and serves
//     retries before hedges (see Budget); a retry after a refused
//     connection is free, as the refusal cost no server anything, and
//     spends none of the call's attempts either (up to MaxRefusedFree);
//   - an answer that an earlier attempt of the same call is still running
//     (Pending) is asked again after its delay without spending an
//     attempt: the outcome exists, and the call should report it;
//   - only failures that another attempt can fix are retried, and a call
//     that may have been applied is retried only if it is idempotent;
//   - the returned error wraps every attempt's error (errors.Is/As work);
//   - no goroutines but a hedge's (which Do waits for); one timer per
//     backoff or hedge, none on the happy path of a call that is not
//     hedged.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warren-mesh/warren/framework/backoff"
)

// Class says whether another attempt may fix a failure.
type Class int

const (
	// Fatal failures are not retried: the answer would be the same, or
	// the caller gave up (its context ended).
	Fatal Class = iota
	// Unprocessed failures happened before the server could act on the
	// request (connection refused, dial error, a load shedder's 503):
	// any request may be retried.
	Unprocessed
	// MaybeProcessed failures may have happened after the server acted
	// (connection reset mid-call, 502, 504, attempt timeout): only
	// idempotent requests are retried.
	MaybeProcessed
)

func (c Class) String() string {
	switch c {
	case Unprocessed:
		return "unprocessed"
	case MaybeProcessed:
		return "maybe-processed"
	}
	return "fatal"
}

// Classer is implemented by errors that know their own Class; Classify
// asks it first (through errors.As, so wrapping is fine).
type Classer interface {
	RetryClass() Class
}

// Delayer is implemented by errors that name the earliest time another
// attempt may be made (an HTTP 429's Retry-After). Do waits at least that
// long, and gives up instead when the delay is over MaxServerDelay or runs
// past the caller's deadline.
type Delayer interface {
	RetryDelay() time.Duration
}

// Pending is implemented by errors that say an earlier attempt of the same
// call is still running where this one landed (a keyed call's "in
// progress" answer): that attempt's outcome is coming, and asking again
// after the error's RetryDelay is the only way to learn it. Do retries such
// a failure without spending one of the call's attempts or a budget token,
// up to MaxAttempts−1 times per call: a call whose attempts a loaded
// machine timed out one after another would otherwise end on this answer
// and report an effect that happened as a failure. The wait between them
// (a claim's TTL) keeps the extra requests few.
type Pending interface {
	RetryPending() bool
}

// MaxServerDelay is the longest server-named delay Do waits out; past it
// the caller gets the error and decides.
const MaxServerDelay = 10 * time.Second

// ErrAttemptTimeout is wrapped into an attempt's error when its own
// timeout, not the caller's deadline, ended it.
var ErrAttemptTimeout = errors.New("attempt timed out")

// ErrBudgetExhausted is wrapped into the final error when a retry was
// wanted but the budget had no token for it.
var ErrBudgetExhausted = errors.New("retry budget exhausted")

// ErrOutpaced is the cause (context.Cause) of an attempt's context when Do
// cancelled it because its hedge, sent later to another instance, answered
// first: the instance is far slower than its peers right now, which
// balancer.Target counts like an attempt timeout.
var ErrOutpaced = errors.New("retry: outpaced by a hedged attempt")

// ErrHedgeUnneeded is the cause of a hedge's context when Do cancelled it
// because the attempt it hedged answered first: nothing is wrong with the
// hedge's instance, and balancer.Target records nothing for it.
var ErrHedgeUnneeded = errors.New("retry: hedge not needed")

// Classify is the default classifier for network calls.
func Classify(err error) Class {
	var c Classer
	var op *net.OpError
	switch {
	case err == nil:
		return Fatal
	case errors.As(err, &c):
		return c.RetryClass()
	case errors.Is(err, ErrAttemptTimeout):
		return MaybeProcessed
	case errors.Is(err, context.Canceled):
		return Fatal // the caller gave up
	case errors.Is(err, syscall.ECONNREFUSED):
		return Unprocessed
	case errors.As(err, &op) && op.Op == "dial":
		// Before the deadline case: a dialer's own timeout ("dial tcp:
		// i/o timeout", a loaded machine or a full accept queue) Is
		// context.DeadlineExceeded, and was taken for the caller's and
		// never retried. Nothing was sent; if it was the caller's
		// deadline, Do sees the context done and stops.
		return Unprocessed
	case errors.Is(err, context.DeadlineExceeded):
		return Fatal // the caller's context, not ours
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return MaybeProcessed
	}
	return Fatal
}

// refused reports whether the attempt was refused a connection: no
// process listened at the address (a killed instance not yet out of
// discovery), so no server did any work for it and its retry adds none,
// which is what the budget bounds. Such a retry spends no token; a burst of
// refusals while a crashed instance is still listed would otherwise empty
// the budget the timeouts and resets of the same moment need. The call's
// attempts still bound it. An answer that says no work was done (a
// Freer: a router without the route, a server without the method, on an
// instance of the previous release in a rolling deploy) is the same: its
// retries spent the budget and failed calls once more than a fifth of
// them met such instances (report j50b).
func refused(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var f Freer
	return errors.As(err, &f) && f.RetryFree()
}

// MaxRefusedFree is how many attempts of one call refused a connection
// (no process at the address: the kernel answered, no server did
// anything) are retried without spending one of its attempts, as they
// spend no budget token. A Freer answer (a 404 from a router without the
// route) is a request served, and spends its attempt: a call to a method
// no instance has must not cost eleven requests. Instances that exited
// while the registry could not be told stay listed until it is back, and
// the client's retries avoid every instance the call failed on; with the
// attempts alone, a call whose set held more dead instances than attempts
// failed while live ones stood by (report r54a: 35 of ~2,700 calls around
// registry restarts under churn, 4 dead of 6 listed). Refusals cost a dial
// each, so a call to a service whose every instance refuses still ends
// after MaxRefusedFree + its attempts.
const MaxRefusedFree = 8

// Freer is an error whose attempt no server did any work for, so that a
// retry of it adds no load and spends no budget token.
type Freer interface {
	RetryFree() bool
}

// Policy decides whether and when to try again. Create one per client
// (it holds the budget) and share it between goroutines.
type Policy struct {
	maxAttempts   int
	perAttempt    time.Duration
	adaptive      *adaptive
	now           func() time.Time
	since         func(time.Time) time.Duration // time.Since unless WithClock
	base, cap     time.Duration
	budget        *Budget
	classify      func(error) Class
	hedgeFloor    time.Duration // 0: no hedging
	needless      *Budget       // allowance of needless hedges (see needlessHedgeRatio)
	hedges        atomic.Int64
	hedgesRefused atomic.Int64
}

// Option configures a Policy. An option given a bad value makes New fail
// with an error that names it.
type Option func(*Policy) error

// WithMaxAttempts sets the number of attempts including the first
// (default 3; 1 disables retries).
func WithMaxAttempts(n int) Option {
	return func(p *Policy) error {
		if n < 1 {
			return fmt.Errorf("retry.WithMaxAttempts(%d): at least 1", n)
		}
		p.maxAttempts = n
		return nil
	}
}

// WithPerAttemptTimeout bounds every attempt of every call by a fixed d,
// in place of the adaptive deadline (0 restores it). A hung attempt is
// abandoned and retried elsewhere while the caller's deadline allows.
func WithPerAttemptTimeout(d time.Duration) Option {
	return func(p *Policy) error {
		if d < 0 {
			return fmt.Errorf("retry.WithPerAttemptTimeout(%s): must not be negative", d)
		}
		p.perAttempt = d
		return nil
	}
}

// WithAdaptiveTimeout sets the adaptive per-attempt deadline, on by
// default: an attempt of a call that may be retried after a timeout
// (idempotent or keyed) is abandoned after multiple × the p99 of the
// attempts seen in the last 10–20 s, clamped to [floor, cap]; the last
// attempt, and every attempt until 20 have been seen, gets cap. Calls that
// could not be retried after a timeout get no deadline from the policy: it
// would only turn a slow success into a failure. Defaults 250 ms, 2 s, 4.
func WithAdaptiveTimeout(floor, cap time.Duration, multiple float64) Option {
	return func(p *Policy) error {
		if floor <= 0 || cap < floor || multiple < 1 {
			return fmt.Errorf("retry.WithAdaptiveTimeout(%s, %s, %g): want 0 < floor ≤ cap and multiple ≥ 1", floor, cap, multiple)
		}
		p.adaptive = newAdaptive(floor, cap, multiple, p.now)
		return nil
	}
}

// WithoutAdaptiveTimeout turns the adaptive deadline off: attempts are
// bounded only by WithPerAttemptTimeout, if set, and the caller's context.
func WithoutAdaptiveTimeout() Option { return func(p *Policy) error { p.adaptive = nil; return nil } }

// WithClock replaces time.Now for the latency the adaptive deadline
// learns from, for tests. Give it before WithAdaptiveTimeout.
func WithClock(now func() time.Time) Option {
	return func(p *Policy) error {
		if now == nil {
			return errors.New("retry.WithClock(nil)")
		}
		p.now = now
		p.since = func(t time.Time) time.Duration { return now().Sub(t) }
		if p.adaptive != nil {
			p.adaptive = newAdaptive(p.adaptive.floor, p.adaptive.cap, p.adaptive.multiple, now)
		}
		return nil
	}
}

// WithBackoff sets the delay before retry n: a random duration between
// half and all of min(base·2ⁿ⁻¹, cap). Defaults 10ms and 500ms.
func WithBackoff(base, cap time.Duration) Option {
	return func(p *Policy) error {
		if base <= 0 || cap < base {
			return fmt.Errorf("retry.WithBackoff(%s, %s): want 0 < base ≤ cap", base, cap)
		}
		p.base, p.cap = base, cap
		return nil
	}
}

// WithBudget sets the retry budget (default NewBudget(0.2, 10), of which
// hedges leave 5 tokens to retries); nil removes the cap, and the reserve
// with it.
func WithBudget(b *Budget) Option { return func(p *Policy) error { p.budget = b; return nil } }

// WithClassifier replaces Classify.
func WithClassifier(f func(error) Class) Option {
	return func(p *Policy) error {
		if f == nil {
			return errors.New("retry.WithClassifier(nil)")
		}
		p.classify = f
		return nil
	}
}

// New returns a Policy, or the first option's complaint about its value.
func New(opts ...Option) (*Policy, error) {
	p := &Policy{
		maxAttempts: 3,
		base:        10 * time.Millisecond,
		cap:         500 * time.Millisecond,
		budget:      NewBudget(0.2, 10),
		classify:    Classify,
		now:         time.Now,
		since:       time.Since, // the monotonic clock alone: half time.Now's cost
		hedgeFloor:  DefaultHedgeFloor,
		needless:    NewBudget(needlessHedgeRatio, needlessHedgeBurst),
	}
	p.adaptive = newAdaptive(DefaultAdaptiveFloor, DefaultAdaptiveCap, DefaultAdaptiveMultiple, p.now)
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("retry: nil option")
		}
		if err := o(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Budget returns the policy's budget (nil if none).
func (p *Policy) Budget() *Budget { return p.budget }

// Hedges returns how many hedges the policy has sent.
func (p *Policy) Hedges() int64 { return p.hedges.Load() }

// AttemptTimeout returns the deadline the next attempt of a retryable call
// would get: the fixed one if set, else the adaptive one, else 0 (none).
func (p *Policy) AttemptTimeout() time.Duration {
	switch {
	case p.perAttempt > 0:
		return p.perAttempt
	case p.adaptive != nil:
		return p.adaptive.timeout()
	}
	return 0
}

// Do calls attempt until it succeeds, fails in a way that should not be
// retried, runs out of attempts or budget, or ctx ends. attempt gets a
// context bounded by the per-attempt deadline (ctx itself when ctx's
// deadline comes first) and the attempt number (from 1). idempotent says
// whether a MaybeProcessed failure (a timeout among them) may be retried;
// only such calls get the adaptive deadline and are hedged (see
// WithHedging), so for them attempt must be safe to run concurrently with
// itself: a hedge is attempt n+1 while n is still out.
//
// The error is the attempt's own when there was one attempt, and an *Error
// wrapping every attempt's error otherwise or when Do gave up early.
func (p *Policy) Do(ctx context.Context, idempotent bool, attempt func(ctx context.Context, n int) error) error {
	if p.budget != nil {
		p.budget.Deposit()
	}
	p.needless.Deposit()
	var errs []error
	waits := 0 // Pending answers retried without spending an attempt
	frees := 0 // refusals retried without spending an attempt
	for n := 1; ; n++ {
		var err error
		if hd := p.hedgeDelay(n, idempotent); hd > 0 {
			var first error
			first, err = p.tryHedged(ctx, n, hd, attempt)
			if first != nil { // attempts n and n+1 both failed
				errs = append(errs, first)
				n++
			}
		} else {
			err = p.try(ctx, n, p.timeoutFor(n, idempotent), attempt)
		}
		if err == nil {
			return nil
		}
		errs = append(errs, err)
		switch p.classify(err) {
		case Fatal:
			return finish(errs, nil)
		case MaybeProcessed:
			if !idempotent {
				return finish(errs, nil)
			}
		}
		pending := false
		if pr := Pending(nil); errors.As(err, &pr) && pr.RetryPending() && waits < p.maxAttempts-1 {
			pending = true
			waits++
			n-- // the next attempt takes this one's number
		} else if p.maxAttempts > 1 && frees < MaxRefusedFree && errors.Is(err, syscall.ECONNREFUSED) {
			frees++
			n-- // a refusal spends no attempt either (MaxRefusedFree)
		}
		if n >= p.maxAttempts {
			return finish(errs, nil)
		}
		if err := ctx.Err(); err != nil {
			return finish(errs, err)
		}
		var serverDelay time.Duration
		if dr := Delayer(nil); errors.As(err, &dr) {
			if serverDelay = dr.RetryDelay(); serverDelay > MaxServerDelay {
				return finish(errs, nil)
			}
		}
		if !pending && !refused(err) && p.budget != nil && !p.budget.Withdraw() {
			return finish(errs, ErrBudgetExhausted)
		}
		d := max(p.backoff(n), serverDelay)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			// Sleeping would only run into the deadline.
			return finish(errs, context.DeadlineExceeded)
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return finish(errs, ctx.Err())
		}
	}
}

// timeoutFor is attempt n's own deadline (0: none).
func (p *Policy) timeoutFor(n int, idempotent bool) time.Duration {
	switch {
	case p.perAttempt > 0:
		return p.perAttempt
	case p.adaptive == nil || !idempotent:
		return 0
	case n >= p.maxAttempts:
		// Nothing would follow a timeout of the last attempt; it gets the
		// cap, which only bounds a hung instance.
		return p.adaptive.cap
	}
	return p.adaptive.timeout()
}

func (p *Policy) try(ctx context.Context, n int, d time.Duration, attempt func(context.Context, int) error) error {
	start := p.now()
	if d <= 0 {
		err := attempt(ctx, n)
		p.observe(ctx, err, p.since(start), false)
		return err
	}
	actx, dl := ctx, time.Now().Add(d)
	if cur, ok := ctx.Deadline(); ok && !cur.After(dl) {
		// The caller's deadline comes first: it ends the attempt as the
		// attempt's own would (context.WithDeadline would only add a
		// cancel to it), and the attempt runs in ctx itself. A context of
		// its own costs a timer, a done channel and a map of the children
		// that net/http and grpc-go hang off it per request.
		dl = cur
	} else {
		var cancel context.CancelFunc
		actx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	err := attempt(actx, n)
	// The attempt timed out when its deadline passed, whatever error it
	// ended with: a server that enforces the propagated deadline (gRPC
	// does) may cancel the call a moment before this process's own timer
	// fires, and a loaded machine widens that moment.
	if err != nil && ctx.Err() == nil && (errors.Is(actx.Err(), context.DeadlineExceeded) || !time.Now().Before(dl)) {
		p.observe(ctx, err, d, true)
		return &timeoutError{d: d, err: err}
	}
	p.observe(ctx, err, p.since(start), false)
	return err
}

// observe feeds the adaptive deadline the attempts that measured the
// service: answers (errors classified Fatal while the caller's context is
// live are answers such as a 4xx) and attempts its deadline cut off.
// Refusals and resets are quick and say nothing about the service's speed.
func (p *Policy) observe(ctx context.Context, err error, d time.Duration, timedOut bool) {
	if p.adaptive == nil {
		return
	}
	if timedOut || err == nil || (ctx.Err() == nil && p.classify(err) == Fatal) {
		p.adaptive.observe(d)
	}
}

func (p *Policy) backoff(n int) time.Duration { return backoff.Nth(p.base, p.cap, n) }

// timeoutError marks an attempt ended by its own timeout. It matches
// ErrAttemptTimeout and still unwraps to what the call returned.
type timeoutError struct {
	d   time.Duration
	err error
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("attempt timed out after %s: %v", e.d, e.err)
}

func (e *timeoutError) Unwrap() []error { return []error{ErrAttemptTimeout, e.err} }

// Error is the failure of a retried call.
type Error struct {
	// Attempts holds each attempt's error, in order.
	Attempts []error
	// Stopped is why Do stopped early, if it did: ErrBudgetExhausted or the
	// context's error. Nil when the attempts ran out or the last failure
	// was not retryable.
	Stopped error
}

func finish(errs []error, stopped error) error {
	if len(errs) == 1 && stopped == nil {
		return errs[0]
	}
	return &Error{Attempts: errs, Stopped: stopped}
}

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Attempts) == 1 {
		b.WriteString("1 attempt failed")
	} else {
		fmt.Fprintf(&b, "%d attempts failed", len(e.Attempts))
	}
	if e.Stopped != nil {
		fmt.Fprintf(&b, " (stopped: %v)", e.Stopped)
	}
	for i, err := range e.Attempts {
		fmt.Fprintf(&b, "; #%d: %v", i+1, err)
	}
	return b.String()
}

// Unwrap returns every attempt's error and the stop reason, so errors.Is
// and errors.As look through all of them.
func (e *Error) Unwrap() []error {
	if e.Stopped == nil {
		return e.Attempts
	}
	return append(append([]error(nil), e.Attempts...), e.Stopped)
}
