// Package climit caps how many calls a client has in flight to one
// service, adapting the cap to what the service can take (AIMD, as TCP
// does with its window): each call that succeeds while the cap was nearly
// used raises it a little; a call the service refused as overloaded, or
// that ran out of time, cuts it by a fraction. Calls over the cap fail at
// once with ErrLimited instead of joining a queue at a service that is
// already behind, which is when a caller's fallback should answer.
//
// WithLatency adds a second signal, for services whose queue the server
// cannot see (a CPU-bound handler waits in the kernel's socket buffers and
// the Go run queue, not in flight): the limit then follows the calls'
// round trip (Gradient2, as the server's in-flight limit), so calls in
// flight stay where the service answers fast and the rest fail at once
// here instead of queueing there.
//
// The server side (package shed) protects one instance from all callers;
// this protects a service, all instances together, from one caller's
// surge: when every instance sheds, the caller backs off as a whole.
package climit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// ErrLimited is returned, without calling the service, when the client's
// calls in flight to it are at the limit: the service has been answering
// "overloaded" or too slowly. It is not retried; fall back or fail fast.
var ErrLimited = svcerr.New(svcerr.Unavailable, "client_limited", "too many calls in flight to an overloaded service")

// Outcome is how a call ended, as far as the limit is concerned.
type Outcome int

const (
	// Success: the service answered. Raises the limit when it was in use.
	Success Outcome = iota
	// Dropped: the service refused the call as overloaded or it timed
	// out. Cuts the limit.
	Dropped
	// Ignored: the call says nothing about the service's capacity (a
	// 4xx, the caller cancelling).
	Ignored
)

// Limiter is an adaptive limit on calls in flight. It is safe for
// concurrent use; use one per called service.
type Limiter struct {
	min, max float64
	initial  float64
	backoff  float64
	cooldown time.Duration
	now      func() time.Time

	inflight atomic.Int64
	limit    atomic.Int64
	limited  atomic.Uint64
	// driftAt is unix ns of the last drift back up or, while the limit
	// is cut, of the last moment a call found it at least half used: the
	// limit has been light (or idle) since.
	driftAt atomic.Int64

	mu       sync.Mutex
	est      float64
	lastDrop time.Time

	lat *latency // nil unless WithLatency
}

type settings struct {
	initial, min, max int
	backoff           float64
	cooldown          time.Duration
	now               func() time.Time
	latency           *latencySettings
}

// Option configures a Limiter. An option given a bad value makes New fail
// with an error that names it.
type Option func(*settings) error

// WithLimits sets the limit's start, floor and ceiling (default 500, 20,
// 5000): generous, so a healthy service never meets it.
func WithLimits(initial, min, max int) Option {
	return func(s *settings) error {
		if min < 1 || max < min || initial < min || initial > max {
			return fmt.Errorf("climit.WithLimits(%d, %d, %d): want 1 ≤ min ≤ initial ≤ max", initial, min, max)
		}
		s.initial, s.min, s.max = initial, min, max
		return nil
	}
}

// WithBackoff sets the factor a drop multiplies the limit by (default 0.9)
// and the least time between two cuts (default 100ms), so a burst of
// refusals that all answer one overload cuts once, not fifty times.
func WithBackoff(factor float64, cooldown time.Duration) Option {
	return func(s *settings) error {
		if !(factor > 0 && factor < 1) || cooldown < 0 {
			return fmt.Errorf("climit.WithBackoff(%v, %s): want 0 < factor < 1 and a cooldown ≥ 0", factor, cooldown)
		}
		s.backoff, s.cooldown = factor, cooldown
		return nil
	}
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return errors.New("climit.WithClock(nil)")
		}
		s.now = now
		return nil
	}
}

// New returns a Limiter.
func New(opts ...Option) (*Limiter, error) {
	s := settings{initial: 500, min: 20, max: 5000, backoff: 0.9, cooldown: 100 * time.Millisecond, now: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("climit: nil option")
		}
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	l := &Limiter{min: float64(s.min), max: float64(s.max), initial: float64(s.initial), backoff: s.backoff, cooldown: s.cooldown, now: s.now, est: float64(s.initial)}
	l.limit.Store(int64(s.initial))
	if s.latency != nil {
		l.lat = newLatency(*s.latency, s.initial, s.min, s.max, s.now())
	}
	return l, nil
}

// Token is an admitted call; Release it exactly once with its Outcome.
type Token struct {
	l        *Limiter
	inflight int64
	start    time.Time // set with WithLatency
}

// Acquire admits a call, or returns false when the limit is reached.
func (l *Limiter) Acquire() (Token, bool) {
	n := l.inflight.Add(1)
	if lim := l.limit.Load(); n > lim {
		l.inflight.Add(-1)
		l.limited.Add(1)
		if l.lat == nil && float64(lim) < l.initial {
			l.recoverQuiet()
		}
		return Token{}, false
	}
	t := Token{l: l, inflight: n}
	if l.lat != nil {
		t.start = l.now()
		if n == 1 {
			l.lat.busy(t.start.UnixNano())
		}
		l.lat.peakAt(n)
	}
	return t, true
}

// Release ends the call.
func (t Token) Release(o Outcome) {
	l := t.l
	if l == nil {
		return
	}
	if l.inflight.Add(-1) == 0 && l.lat != nil {
		l.lat.idleAt(l.now().UnixNano(), &l.inflight)
	}
	switch o {
	case Success:
		if l.lat != nil {
			l.sample(l.now(), t.start)
			return
		}
		// Far below the limit, a success says nothing about it. limit is
		// est rounded down, so this skips only what the check under the
		// lock would skip, and the common call takes no lock.
		if lim := l.limit.Load(); 2*t.inflight < lim {
			if float64(lim) < l.initial {
				l.drift()
			}
			return
		}
		l.mu.Lock()
		// est is read under mu: Dropped writes it concurrently.
		if float64(t.inflight) >= l.est/2 {
			if l.est < l.initial {
				l.driftAt.Store(l.now().UnixNano()) // in use: not light
			}
			l.est = math.Min(l.max, l.est+1/l.est)
			l.limit.Store(int64(l.est))
		}
		l.mu.Unlock()
	case Dropped:
		now := l.now()
		l.mu.Lock()
		if l.lastDrop.IsZero() || now.Sub(l.lastDrop) >= l.cooldown {
			l.lastDrop = now
			if l.lat != nil {
				l.est = l.lat.grad.Cut(l.backoff)
			} else {
				l.est = math.Max(l.min, l.est*l.backoff)
			}
			l.limit.Store(int64(l.est))
		}
		l.mu.Unlock()
	}
}

// Recovery of a limit cut below its start while calls are light: after
// RecoverAfter without a drop, each DriftEvery a success far below the
// limit moves it a tenth of the way (at least 1) back to its start, never
// past it. Without it, a limit cut to its floor by an incident stays there
// as long as fewer than half of it are in flight (report j50a 1 and 2),
// and refuses the next normal burst.
const (
	RecoverAfter = 2 * time.Second
	DriftEvery   = 100 * time.Millisecond
)

// drift moves a cut limit back towards its start (see RecoverAfter): a
// step for every DriftEvery the limit has been light since the later of
// the last drift (or use) and RecoverAfter after the last drop, so a
// quiet spell between two light calls counts as the light time it is.
func (l *Limiter) drift() {
	now := l.now()
	if now.UnixNano()-l.driftAt.Load() < int64(DriftEvery) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.driftLocked(now)
}

func (l *Limiter) driftLocked(now time.Time) {
	if now.Sub(l.lastDrop) < RecoverAfter || now.UnixNano()-l.driftAt.Load() < int64(DriftEvery) || l.est >= l.initial {
		return
	}
	from := max(l.driftAt.Load(), l.lastDrop.Add(RecoverAfter-DriftEvery).UnixNano())
	steps := max(1, min((now.UnixNano()-from)/int64(DriftEvery), 1000))
	l.driftAt.Store(now.UnixNano())
	for range steps {
		if l.est >= l.initial {
			break
		}
		l.est = math.Min(l.initial, l.est+math.Max(1, (l.initial-l.est)/10))
	}
	l.limit.Store(int64(l.est))
}

// recoverQuiet is drift for a call the cut limit refused: it counts a
// quiet spell (no call completed with the limit in use, no drift, no
// refusal for RecoverAfter) as light time, so the first burst after it
// meets the limit that spell restored instead of the one the incident
// left (without it, nothing moved the limit while no call came). The
// refusal itself finds the limit in use, and restarts that count.
func (l *Limiter) recoverQuiet() {
	now := l.now()
	if now.UnixNano()-l.driftAt.Load() < int64(RecoverAfter) {
		return // in use lately (or just drifted): not quiet
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.UnixNano()-l.driftAt.Load() >= int64(RecoverAfter) {
		l.driftLocked(now)
	}
	l.driftAt.Store(now.UnixNano())
}

// Stats is a Limiter's state.
type Stats struct {
	Limit    int64
	InFlight int64
	// Limited counts calls refused with ErrLimited.
	Limited uint64
}

// Stats returns the current state.
func (l *Limiter) Stats() Stats {
	return Stats{Limit: l.limit.Load(), InFlight: l.inflight.Load(), Limited: l.limited.Load()}
}

// Classify is the default way to tell a call's Outcome from its error:
// nil is Success; an overload answer (errors.Is svcerr.ErrOverloaded) or
// a deadline is Dropped; anything else is Ignored.
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, svcerr.ErrOverloaded), errors.Is(err, context.DeadlineExceeded):
		return Dropped
	}
	return Ignored
}

// Middleware limits calls through an endpoint; classify tells the Outcome
// from the error (nil: Classify).
func Middleware(l *Limiter, classify func(error) Outcome) endpoint.Middleware {
	if classify == nil {
		classify = Classify
	}
	return func(next endpoint.Endpoint) endpoint.Endpoint {
		return func(ctx context.Context, req any) (any, error) {
			tok, ok := l.Acquire()
			if !ok {
				return nil, ErrLimited
			}
			// Released by defer: a panic in next that is recovered higher
			// up (the transports recover handler panics) would otherwise
			// keep the token, and each one lower the capacity for good.
			// A panic says nothing of the service's capacity: Ignored.
			outcome := Ignored
			defer func() { tok.Release(outcome) }()
			resp, err := next(ctx, req)
			outcome = classify(err)
			return resp, err
		}
	}
}
