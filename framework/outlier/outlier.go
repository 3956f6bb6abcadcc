// Package outlier ejects misbehaving instances from load balancing.
//
// Each instance gets a Breaker. After a run of consecutive failures the
// breaker opens and the instance is ejected for a cooldown; when the cooldown
// ends one probe request is let through (half-open). A good probe closes the
// breaker, a bad one ejects the instance again for twice as long (capped).
//
// All breakers of one service share a Detector, which enforces the panic
// threshold: ejection never takes more than MaxEjectionPercent of the set out
// of rotation and always leaves at least one instance in, because sending
// traffic to a sick instance beats sending it nowhere. When the threshold
// keeps a failing instance in, the instances already ejected are probed at
// once rather than after their cooldowns: one ejected for a passing stall
// is then readmitted, and its slot ejects the failing one (an early probe
// that fails ejects it again for as long as before, not twice as long).
// So are they when
// instances in rotation leave the set and the ejected are left over the
// threshold.
package outlier

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// State is where a breaker stands.
type State int32

// Breaker states.
const (
	// Closed: the instance takes traffic.
	Closed State = iota
	// Open: the instance is ejected until its cooldown ends.
	Open
	// HalfOpen: the cooldown ended; one probe at a time decides.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Detector holds the shared settings and the ejection count of one service.
type Detector struct {
	consecutive  int
	timeouts     int
	cooldown     time.Duration
	maxCooldown  time.Duration
	maxPercent   int
	probeTimeout time.Duration
	now          func() time.Time
	observer     Observer
	changes      ChangeObserver // observer, if it is one

	mu      sync.Mutex
	total   int                   // live breakers
	ejected int                   // breakers not Closed
	out     map[*Breaker]struct{} // those breakers

	// refusedAt is when the panic threshold last kept a failing instance
	// in (d.now() in unix nanoseconds; 0: never).
	refusedAt atomic.Int64
}

// Option configures a Detector. An option given a bad value makes New fail
// with an error that names it.
type Option func(*Detector) error

// WithConsecutiveFailures sets how many failures in a row eject an
// instance (default 5).
func WithConsecutiveFailures(n int) Option {
	return func(d *Detector) error {
		if n < 1 {
			return fmt.Errorf("outlier.WithConsecutiveFailures(%d): at least 1", n)
		}
		d.consecutive = n
		return nil
	}
}

// WithConsecutiveTimeouts sets how many attempts in a row that got no
// answer before their deadline eject an instance (default 2). It is lower
// than WithConsecutiveFailures because a timeout is the costliest failure
// (each one holds a caller for the whole deadline) and the surest sign of
// a hung instance; a quick failure still counts towards both.
func WithConsecutiveTimeouts(n int) Option {
	return func(d *Detector) error {
		if n < 1 {
			return fmt.Errorf("outlier.WithConsecutiveTimeouts(%d): at least 1", n)
		}
		d.timeouts = n
		return nil
	}
}

// WithCooldown sets the first ejection time (default 10s) and its cap
// after repeated ejections double it (default 5m).
func WithCooldown(base, maxCooldown time.Duration) Option {
	return func(d *Detector) error {
		if base <= 0 || maxCooldown < base {
			return fmt.Errorf("outlier.WithCooldown(%s, %s): want 0 < base ≤ max", base, maxCooldown)
		}
		d.cooldown, d.maxCooldown = base, maxCooldown
		return nil
	}
}

// WithMaxEjectionPercent caps the share of instances ejected at once
// (default 50). At least one instance always stays in rotation whatever
// the value.
func WithMaxEjectionPercent(p int) Option {
	return func(d *Detector) error {
		if p < 0 || p > 100 {
			return fmt.Errorf("outlier.WithMaxEjectionPercent(%d): want 0–100", p)
		}
		d.maxPercent = p
		return nil
	}
}

// WithProbeTimeout is how long a half-open probe may stay unanswered
// before another request may probe (default 5s). It covers probes that a
// balancer claimed but never sent and calls that never report back.
func WithProbeTimeout(d time.Duration) Option {
	return func(x *Detector) error {
		if d <= 0 {
			return fmt.Errorf("outlier.WithProbeTimeout(%s): must be positive", d)
		}
		x.probeTimeout = d
		return nil
	}
}

// Observer hears every breaker transition of a Detector (metrics use it).
// Calls are made with the breaker's lock held: they must be quick and must
// not call back into the breaker.
type Observer interface {
	// BreakerChanged reports that instance's breaker moved from one state
	// to another; to == Open is an ejection.
	BreakerChanged(instance string, from, to State)
	// BreakerReleased reports that instance left the set in state last.
	BreakerReleased(instance string, last State)
}

// ChangeObserver is an Observer that also hears why a breaker moved: a
// Detector given one calls BreakerChangedWith in place of BreakerChanged.
// Logs use it, so an ejection line says which rule ejected the instance,
// on what error and for how long (report j57b F2).
type ChangeObserver interface {
	Observer
	BreakerChangedWith(instance string, c Change)
}

// Change is one breaker transition and what led to it.
type Change struct {
	From, To State
	// Reason names the rule that ejected the instance, when To is Open;
	// when To is Closed it is ReasonExpired for an instance readmitted
	// without a probe, and empty for one a good probe readmitted.
	Reason Reason
	// Cooldown is how long the ejection lasts, when To is Open: the
	// detector's cooldown, doubled for each ejection in a row.
	Cooldown time.Duration
	// Out is how long the instance was out of rotation, when a good probe
	// readmits it (To Closed): since the first of its ejections in a row.
	Out time.Duration
	// Err is the failure that ejected the instance (RecordError's; nil
	// when recorded without one).
	Err error
}

// Reason is the rule that ejected an instance.
type Reason string

// Reasons.
const (
	// ReasonFailures: WithConsecutiveFailures failures in a row.
	ReasonFailures Reason = "failures"
	// ReasonTimeouts: WithConsecutiveTimeouts attempts in a row unanswered
	// before their deadline.
	ReasonTimeouts Reason = "timeouts"
	// ReasonOutpaced: failures in a row, every one of them an attempt a
	// hedge to another instance outpaced. A stalled host outpaces a
	// healthy instance too, so it is told apart from ReasonFailures.
	ReasonOutpaced Reason = "outpaced"
	// ReasonProbe: the probe of an ejected instance failed.
	ReasonProbe Reason = "probe"
	// ReasonExpired (To Closed): readmitted without a probe, its cooldown
	// over, to free a slot of the panic threshold for a failing instance.
	ReasonExpired Reason = "expired"
)

// Failure is the kind of a failed request, for RecordError.
type Failure int

// Failure kinds.
const (
	// Failed: an error answer (a 5xx) or a transport error.
	Failed Failure = iota
	// TimedOut: no answer before the deadline (as RecordTimeout).
	TimedOut
	// Outpaced: a hedge sent later to another instance answered first.
	Outpaced
)

// WithObserver reports breaker transitions to o (default: none); o may be
// a ChangeObserver.
func WithObserver(o Observer) Option {
	return func(d *Detector) error {
		d.observer = o
		d.changes, _ = o.(ChangeObserver)
		return nil
	}
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(d *Detector) error {
		if now == nil {
			return errors.New("outlier.WithClock(nil)")
		}
		d.now = now
		return nil
	}
}

// New returns a Detector, or the first option's complaint about its value.
func New(opts ...Option) (*Detector, error) {
	d := &Detector{
		consecutive:  5,
		timeouts:     2,
		cooldown:     10 * time.Second,
		maxCooldown:  5 * time.Minute,
		maxPercent:   50,
		probeTimeout: 5 * time.Second,
		now:          time.Now,
		out:          map[*Breaker]struct{}{},
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("outlier: nil option")
		}
		if err := o(d); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Ejected returns how many of the detector's instances are out of rotation
// (open or half-open) and how many there are.
func (d *Detector) Ejected() (ejected, total int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ejected, d.total
}

// BreakerOption configures one Breaker.
type BreakerOption func(*Breaker)

// ForInstance names the instance the breaker guards, as the Observer sees
// it.
func ForInstance(id string) BreakerOption { return func(b *Breaker) { b.instance = id } }

// NewBreaker returns a closed breaker for a new instance. Call Release when
// the instance leaves the set so the panic threshold counts only live ones.
func (d *Detector) NewBreaker(opts ...BreakerOption) *Breaker {
	d.mu.Lock()
	d.total++
	d.mu.Unlock()
	b := &Breaker{d: d}
	for _, o := range opts {
		o(b)
	}
	return b
}

// tryEject reserves an ejection slot for b (its lock held) if the panic
// threshold allows it.
func (d *Detector) tryEject(b *Breaker) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fullLocked() {
		d.expireLocked(b)
	}
	if d.fullLocked() {
		d.refusedAt.Store(d.now().UnixNano())
		return false
	}
	d.ejected++
	d.out[b] = struct{}{}
	return true
}

func (d *Detector) fullLocked() bool {
	return d.ejected+1 > d.total*d.maxPercent/100 || d.total-d.ejected <= 1
}

// expireLocked readmits, unprobed, the ejected breakers (other than
// self) whose cooldown has ended: they hold slots of the threshold though
// nothing has probed them, as when a zone-aware balancer keeps traffic in
// its zone while instances of another zone, ejected during a spill, wait
// for a probe that never comes; and a failing instance was then kept in
// for good. Their cooldown is over, so they are fair game for traffic
// anyway. Their run of ejections ends too: kept, only a good probe would
// end it, and one failure a week later would be ejected for minutes.
// A breaker busy under its own lock is left alone: its lock is taken
// after the detector's here, before it elsewhere.
func (d *Detector) expireLocked(self *Breaker) {
	now := d.now()
	for o := range d.out {
		if o == self || !o.mu.TryLock() {
			continue
		}
		if !o.released && State(o.state.Load()) == Open && !now.Before(o.until) {
			o.setLocked(Change{To: Closed, Reason: ReasonExpired, Out: now.Sub(o.outSince)})
			o.failures.Store(0)
			o.timeouts.Store(0)
			o.outpaced.Store(0)
			o.ejections = 0
			d.ejected--
			delete(d.out, o)
		}
		o.mu.Unlock()
		if !d.fullLocked() {
			return
		}
	}
}

// ProbeEjected lets every instance ejected now be probed at once, as when
// the panic threshold keeps a failing instance in: for a caller whose
// only instance in rotation is the one it must avoid (a retry or hedge of
// an attempt still out or just failed there), an early probe of the
// ejected beats going back to it. A slow or dying instance fails nothing
// until its attempts end, so the threshold alone would not ask.
func (d *Detector) ProbeEjected() { d.refusedAt.Store(d.now().UnixNano()) }

func (d *Detector) readmit(b *Breaker) {
	d.mu.Lock()
	d.ejected--
	delete(d.out, b)
	d.mu.Unlock()
}

// Breaker is the ejection state of one instance. Its methods are safe for
// concurrent use; the healthy path (Allow on a closed breaker, Record of a
// success) touches only atomics.
type Breaker struct {
	d        *Detector
	instance string
	state    atomic.Int32
	failures atomic.Int32 // consecutive, while closed
	timeouts atomic.Int32 // consecutive timeouts among them
	outpaced atomic.Int32 // outpaced attempts among them

	mu        sync.Mutex
	since     time.Time // start of the current ejection
	until     time.Time // end of the current ejection
	outSince  time.Time // start of the first of the ejections in a row
	ejections int       // in a row, for the doubling cooldown
	probeAt   time.Time // when the current half-open probe was let through
	early     bool      // the probe was let through before the cooldown ended
	released  bool
}

// State returns the breaker's state. An Open breaker whose cooldown has
// passed reports Open until a request asks Allow.
func (b *Breaker) State() State { return State(b.state.Load()) }

// Ejected reports whether the instance is out of rotation now without
// claiming anything: true while open and cooling down, or half-open with a
// probe in flight. Balancers use it to count healthy instances.
func (b *Breaker) Ejected() bool {
	if State(b.state.Load()) == Closed {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.d.now()
	switch State(b.state.Load()) {
	case Open:
		return b.coolingLocked(now)
	case HalfOpen:
		return now.Sub(b.probeAt) < b.d.probeTimeout
	}
	return false
}

// coolingLocked reports whether an open breaker still waits out its
// cooldown: not once it has passed, nor once the panic threshold has kept
// another, failing instance in since this one was ejected.
func (b *Breaker) coolingLocked(now time.Time) bool {
	return now.Before(b.until) && b.d.refusedAt.Load() <= b.since.UnixNano()
}

// Allow reports whether a request may go to the instance now. On a breaker
// whose cooldown has ended it lets exactly one probe through (per
// ProbeTimeout), so call it only for an instance you are about to use.
func (b *Breaker) Allow() bool {
	if State(b.state.Load()) == Closed {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		// The instance left the set (a pick from the set before): no
		// probe, and no transition for an observer that heard the
		// release.
		return false
	}
	now := b.d.now()
	switch State(b.state.Load()) {
	case Closed:
		return true
	case Open:
		if b.coolingLocked(now) {
			return false
		}
		b.early = now.Before(b.until) // a refusal or ProbeEjected cut it short
		b.setLocked(Change{To: HalfOpen})
		b.probeAt = now
		return true
	default: // HalfOpen
		if now.Sub(b.probeAt) < b.d.probeTimeout {
			return false
		}
		b.probeAt = now // the previous probe never reported; try again
		return true
	}
}

// Record reports the outcome of one request. failed should be true only for
// failures that say something about the instance (refused connections,
// timeouts, 5xx), not for a caller's bad request.
func (b *Breaker) Record(failed bool) { b.record(failed, Failed, nil) }

// RecordTimeout reports a request the instance did not answer before its
// deadline: a failure that also counts towards WithConsecutiveTimeouts.
func (b *Breaker) RecordTimeout() { b.record(true, TimedOut, nil) }

// RecordError reports a failed request of kind, with its error: Failed
// is Record(true), TimedOut RecordTimeout. The error and kind only go as
// far as the ChangeObserver's Change, should this failure eject.
func (b *Breaker) RecordError(kind Failure, err error) { b.record(true, kind, err) }

func (b *Breaker) record(failed bool, kind Failure, err error) {
	timeout := kind == TimedOut
	st := State(b.state.Load())
	if st == Closed {
		if !failed {
			if b.failures.Load() != 0 || b.timeouts.Load() != 0 {
				b.failures.Store(0)
				b.timeouts.Store(0)
				b.outpaced.Store(0)
			}
			return
		}
		if kind == Outpaced {
			b.outpaced.Add(1)
		}
		f := int(b.failures.Add(1))
		t := int(b.timeouts.Load())
		if timeout {
			t = int(b.timeouts.Add(1))
		}
		if f < b.d.consecutive && t < b.d.timeouts {
			return
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	now := b.d.now()
	switch State(b.state.Load()) {
	case Closed:
		if !failed || (int(b.failures.Load()) < b.d.consecutive && int(b.timeouts.Load()) < b.d.timeouts) {
			return // another goroutine got here first
		}
		if !b.d.tryEject(b) {
			// Panic threshold: keep the instance in, but start counting
			// again so the next run of failures asks once more.
			b.failures.Store(0)
			b.timeouts.Store(0)
			b.outpaced.Store(0)
			return
		}
		reason := ReasonFailures
		switch {
		case int(b.timeouts.Load()) >= b.d.timeouts:
			reason = ReasonTimeouts
		case b.outpaced.Load() >= b.failures.Load():
			reason = ReasonOutpaced
		}
		b.ejectLocked(now, reason, err, false)
	case HalfOpen:
		if failed {
			b.ejectLocked(now, ReasonProbe, err, b.early)
			return
		}
		b.setLocked(Change{From: HalfOpen, To: Closed, Out: now.Sub(b.outSince)})
		b.failures.Store(0)
		b.timeouts.Store(0)
		b.outpaced.Store(0)
		b.ejections = 0
		b.d.readmit(b)
	case Open:
		// A request sent before the ejection finished late; it says
		// nothing new.
	}
}

// ejectLocked opens the breaker, for reason, on err; the ejection slot
// is already counted. again repeats the last ejection's cooldown instead
// of doubling it: the failed probe was let through before that cooldown
// ended, and early probes must not run the doubling up to its cap within
// moments, keeping a recovered instance out for minutes after.
func (b *Breaker) ejectLocked(now time.Time, reason Reason, err error, again bool) {
	steps := b.ejections
	if again && steps > 0 {
		steps--
	}
	cd := b.d.cooldown << min(steps, 16)
	if cd > b.d.maxCooldown || cd <= 0 {
		cd = b.d.maxCooldown
	}
	if b.ejections == 0 {
		b.outSince = now
	}
	b.ejections = steps + 1
	b.since, b.until = now, now.Add(cd)
	b.failures.Store(0)
	b.timeouts.Store(0)
	b.outpaced.Store(0)
	b.setLocked(Change{To: Open, Reason: reason, Cooldown: cd, Err: err})
}

// setLocked moves the breaker to c.To (c.From is filled in) and tells the
// observer.
func (b *Breaker) setLocked(c Change) {
	c.From = State(b.state.Swap(int32(c.To)))
	if c.From == c.To {
		return
	}
	if o := b.d.changes; o != nil {
		o.BreakerChangedWith(b.instance, c)
	} else if o := b.d.observer; o != nil {
		o.BreakerChanged(b.instance, c.From, c.To)
	}
}

// Release removes the breaker from its detector's counts; call it when the
// instance leaves discovery. It is idempotent.
func (b *Breaker) Release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.released {
		return
	}
	b.released = true
	if o := b.d.observer; o != nil {
		o.BreakerReleased(b.instance, State(b.state.Load()))
	}
	d := b.d
	d.mu.Lock()
	d.total--
	if State(b.state.Load()) != Closed {
		d.ejected--
		delete(d.out, b)
	}
	// Instances in rotation that leave can leave the ejected over the cap,
	// or alone in the set; the balancers then fall back to them without a
	// probe, and an open breaker ignores the answers. As when the
	// threshold refuses an ejection: probe the ejected at once.
	if d.ejected > 0 && (d.ejected > d.total*d.maxPercent/100 || d.total-d.ejected < 1) {
		d.refusedAt.Store(d.now().UnixNano())
	}
	d.mu.Unlock()
}
