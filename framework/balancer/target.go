// Package balancer picks which instance of a service takes a request.
//
// The endpointer keeps one Target per discovered instance and hands the
// current set to a Balancer with Update; callers then ask Pick for each
// attempt. Every balancer here is safe for concurrent use, lock-free on the
// pick path, respects outlier ejection (Target.Allow) and an instance to
// avoid (the one the previous attempt failed on), and falls back to ejected
// instances rather than return nothing while instances exist.
//
// Pick one by the traffic:
//
//   - P2C: instances of unequal speed or requests of unequal cost; sends
//     less to the slow and the busy (power of two choices over EWMA latency
//     times in-flight requests). The client's default (client.WithBalancer).
//   - RoundRobin: equal instances, equal requests (and the default inside
//     each ZoneAware group).
//   - Random: like RoundRobin without shared counter (go-kit's random
//     balancer shares a *rand.Rand across goroutines; this one does not).
//   - ConsistentHash: requests with a key (user ID, cart ID) that should land
//     on the same instance, for its caches; only ~1/N of keys move when one
//     of N instances leaves.
//   - ZoneAware: instances in several zones; keeps traffic in the caller's
//     zone while enough local instances are healthy.
//   - Weighted: instances of unequal size, by their registry weight.
package balancer

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd/lb"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// ErrNoEndpoints is returned by Pick when the set is empty. It is go-kit's
// lb.ErrNoEndpoints value, so code written against go-kit matches it.
var ErrNoEndpoints = lb.ErrNoEndpoints

// ErrRetired is returned by Target.Call when the instance left discovery
// between the pick and the call; the caller should pick again. The request
// was not sent.
var ErrRetired = errors.New("balancer: instance left discovery")

// Balancer chooses a target per request.
type Balancer interface {
	// Update replaces the target set. It is called from one goroutine (the
	// endpointer's) whenever discovery changes, never concurrently with
	// itself; Pick may run concurrently with it. The balancer may keep the
	// slice: the caller must not modify it after.
	Update(targets []*Target)
	// Pick returns the target for one attempt. avoid, if not nil, is skipped
	// unless it is the only target that may take traffic.
	Pick(ctx context.Context, avoid *Target) (*Target, error)
}

// Target is one instance as the balancers see it: its identity, its
// registry record (parsed when first asked for), the go-kit endpoint that
// calls it, and the load and health figures the balancers read.
type Target struct {
	// ID is the instance string discovery delivered; unique in a set.
	ID string
	// Endpoint calls the instance. Use Call, which keeps the figures.
	Endpoint endpoint.Endpoint

	inst atomic.Pointer[registry.Instance] // parsed from ID on first Instance()

	breaker *outlier.Breaker
	failed  func(error) bool
	closer  io.Closer
	born    time.Time

	inflight  atomic.Int64
	retired   atomic.Bool
	closeOnce sync.Once
	closed    atomic.Bool
	ewmaNanos atomic.Int64 // latency EWMA
	lastNanos atomic.Int64 // since born, of the last EWMA update
	holdUntil atomic.Int64 // since born: no new picks before, after an overload answer
}

// Overloaded is implemented by errors that say the instance refused the
// request because it is overloaded (a load shedder's answer): not a
// failure of the instance, but a request to leave it alone for
// OverloadHold. A zero hold means the error is not an overload answer.
type Overloaded interface {
	OverloadHold() time.Duration
}

// Refused is implemented by errors that say the instance turned the
// request away before any work for a reason of the caller's — a rate
// limit's 429, a quota's RESOURCE_EXHAUSTED — not because it is full: it
// is alive, and its quick answer says nothing of its speed. Such an answer
// is neither a failure nor a latency sample (P2C would otherwise favour
// the instance that refuses fastest); unlike Overloaded, it does not hold
// the instance out of picks.
type Refused interface {
	Refused() bool
}

// TargetOption configures a Target.
type TargetOption func(*Target)

// WithBreaker attaches an outlier breaker; Call records into it and Allow
// consults it.
func WithBreaker(b *outlier.Breaker) TargetOption { return func(t *Target) { t.breaker = b } }

// WithFailure sets which call errors count against the instance's health
// (default: every non-nil error).
func WithFailure(f func(error) bool) TargetOption { return func(t *Target) { t.failed = f } }

// WithCloser sets what Retire closes once in-flight calls have finished.
func WithCloser(c io.Closer) TargetOption { return func(t *Target) { t.closer = c } }

// WithEpoch sets the past instant the target counts its stored times from
// (last sample, overload hold); by default, when it is made. Any past
// instant serves, so a caller that makes a whole set of targets (an
// endpointer's first set: thousands) gives them one it read once, instead
// of a clock read per target. Make the option once and reuse it: each
// call allocates.
func WithEpoch(epoch time.Time) TargetOption { return func(t *Target) { t.born = epoch } }

// NewTarget checks that the instance string parses and wraps the endpoint.
func NewTarget(id string, ep endpoint.Endpoint, opts ...TargetOption) (*Target, error) {
	if _, err := registry.ParseInstance(id); err != nil {
		return nil, err
	}
	return NewCheckedTarget(id, ep, opts...), nil
}

// NewCheckedTarget is NewTarget for an instance string the caller has
// already parsed without error.
func NewCheckedTarget(id string, ep endpoint.Endpoint, opts ...TargetOption) *Target {
	t := &Target{ID: id, Endpoint: ep}
	for _, o := range opts {
		o(t)
	}
	if t.born.IsZero() {
		t.born = time.Now()
	}
	if t.failed == nil {
		t.failed = anyError
	}
	return t
}

func anyError(err error) bool { return err != nil }

// Instance returns the instance's registry record, registry.ParseInstance
// of ID: zone, weight, metadata. It is parsed on the first call and kept,
// so a client whose balancer never asks (P2C, round robin, random) holds
// no parsed record per instance — at 10k instances that is megabytes.
func (t *Target) Instance() registry.Instance {
	if p := t.inst.Load(); p != nil {
		return *p
	}
	inst, err := registry.ParseInstance(t.ID)
	if err != nil {
		inst = registry.Instance{ID: t.ID} // not reached: the constructors checked ID
	}
	t.inst.CompareAndSwap(nil, &inst)
	return *t.inst.Load()
}

// Call invokes the endpoint, counting it in flight and recording its
// latency and health. It returns ErrRetired without calling when the target
// has left the set. A panic in the endpoint is not recovered here: it goes
// on up to the caller, the call no longer counted in flight.
func (t *Target) Call(ctx context.Context, req any) (any, error) {
	// Dekker-style handshake with Retire (both sides use sequentially
	// consistent atomics): either we see retired and back out, or Retire
	// sees our in-flight count and leaves the close to our release.
	t.inflight.Add(1)
	// Deferred, so a panic in the endpoint (a user's encoder, decoder or
	// RoundTripper wrapper) that a caller recovers — Warren's transports
	// recover handler panics — still gives the call back: a count left at
	// 1 would keep the closer of a retired target from ever running and
	// have P2C score the instance busy for good. The latency and breaker
	// bookkeeping below stays on the return path: a panic says nothing of
	// the instance.
	defer t.release()
	if t.retired.Load() {
		return nil, ErrRetired
	}
	// Times since born: time.Since reads only the monotonic clock, half
	// the cost of time.Now, twice a call.
	start := time.Since(t.born)
	resp, err := t.Endpoint(ctx, req)
	end := time.Since(t.born)
	if hold := overloadHold(err); hold > 0 {
		// The instance is alive and said so at once: hold it out of picks
		// for a while, and neither count a failure nor take the quick
		// refusal as a sign of speed.
		t.holdUntil.Store(int64(end + hold))
		if t.breaker != nil {
			t.breaker.Record(false)
		}
		return resp, err
	}
	if refused(err) {
		if t.breaker != nil {
			t.breaker.Record(false)
		}
		return resp, err
	}
	outpaced := false
	if err != nil && ctx.Err() != nil {
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, retry.ErrHedgeUnneeded):
			// The call it hedged answered first: this says nothing
			// about the instance.
			return resp, err
		case errors.Is(cause, retry.ErrOutpaced):
			// A hedge sent later to another instance answered first: a
			// failure of this instance (five in a row eject it), but not
			// a timeout strike (two eject), since a loaded machine's
			// stall of one process outpaces it too; and no latency
			// sample, so P2C keeps trying the instance and a hung one
			// meets its strikes within a few calls.
			outpaced = true
		}
	}
	failed := err != nil && (outpaced || t.failed(err))
	if err != nil && !failed && ctx.Err() != nil {
		// The caller gave up (a cancel that is no failure of the
		// instance): no answer, so neither a latency sample nor a
		// success. Recorded as one, it restarted a hung instance's run
		// of timeouts and readmitted it from a cancelled probe; the
		// probe's slot frees after WithProbeTimeout, as for any probe
		// that never reports.
		return resp, err
	}
	if !outpaced {
		t.observe(end-start, end, failed)
	}
	if t.breaker != nil {
		// A failure goes with its kind and error, for the ejection line
		// to say why (report j57b F2); a success as before.
		switch {
		case !failed:
			t.breaker.Record(false)
		case outpaced:
			t.breaker.RecordError(outlier.Outpaced, err)
		case ctx.Err() == context.DeadlineExceeded:
			// No answer before the attempt's deadline: the surest sign of
			// a hung instance, which ejects it sooner.
			t.breaker.RecordError(outlier.TimedOut, err)
		default:
			t.breaker.RecordError(outlier.Failed, err)
		}
	}
	return resp, err
}

// overloadHold is how long err asks to be left alone (Overloaded), 0 if
// it does not. Apart from Call, so a call that succeeds allocates nothing
// for the errors.As target.
func overloadHold(err error) time.Duration {
	if err == nil {
		return 0
	}
	var ov Overloaded
	if errors.As(err, &ov) {
		return ov.OverloadHold()
	}
	return 0
}

// refused reports whether err is a Refused answer.
func refused(err error) bool {
	if err == nil {
		return false
	}
	var r Refused
	return errors.As(err, &r) && r.Refused()
}

func (t *Target) release() {
	if t.inflight.Add(-1) == 0 && t.retired.Load() {
		t.close()
	}
}

// Retire takes the target out of service: new Calls get ErrRetired, and
// the closer runs once the calls in flight have finished (at once if none
// are). It is idempotent and never blocks.
func (t *Target) Retire() {
	if t.retired.Swap(true) {
		return
	}
	if t.breaker != nil {
		t.breaker.Release()
	}
	if t.inflight.Load() == 0 {
		t.close()
	}
}

func (t *Target) close() {
	t.closeOnce.Do(func() {
		if t.closer != nil {
			// Nobody is left to act on a close error: the instance is gone
			// from discovery and its last call has returned.
			_ = t.closer.Close()
		}
		t.closed.Store(true)
	})
}

// Closed reports whether the target's closer has run.
func (t *Target) Closed() bool { return t.closed.Load() }

// Retired reports whether the target has left the set.
func (t *Target) Retired() bool { return t.retired.Load() }

// InFlight returns the number of calls running now.
func (t *Target) InFlight() int64 { return t.inflight.Load() }

// Allow reports whether the target may take a request, claiming its
// half-open probe if it has one. Balancers call it only for the target they
// return. A target holding off after an overload answer is not allowed.
func (t *Target) Allow() bool {
	return !t.Held() && (t.breaker == nil || t.breaker.Allow())
}

// Ejected reports, without side effects, whether the target is out of
// rotation: ejected by the outlier detector or held off after an overload
// answer.
func (t *Target) Ejected() bool {
	return t.Held() || (t.breaker != nil && t.breaker.Ejected())
}

// Held reports whether the target answered "overloaded" recently enough
// that it is still left alone (see Overloaded).
func (t *Target) Held() bool {
	h := t.holdUntil.Load()
	return h != 0 && time.Since(t.born) < time.Duration(h)
}

// Breaker returns the attached breaker, or nil.
func (t *Target) Breaker() *outlier.Breaker { return t.breaker }

// ewmaTau is the EWMA's time constant: a sample's weight halves every
// ~0.7·tau, and an idle target's cost decays on the same scale so it gets
// tried again rather than starve on one old slow sample.
const ewmaTau = time.Second

// failurePenalty is the latency recorded for a failed call, so an instance
// that fails fast does not look fast to P2C.
const failurePenalty = time.Second

// observe records a call that took rtt and ended at end (since born).
func (t *Target) observe(rtt, end time.Duration, failed bool) {
	if failed && rtt < failurePenalty {
		rtt = failurePenalty
	}
	now := int64(end)
	last := t.lastNanos.Swap(now)
	old := t.ewmaNanos.Load()
	if old == 0 {
		t.ewmaNanos.Store(int64(rtt))
		return
	}
	w := math.Exp(-float64(now-last) / float64(ewmaTau))
	// Concurrent observers may overwrite each other's update; the EWMA is
	// an estimate and losing an occasional sample is cheaper than a lock.
	t.ewmaNanos.Store(int64(float64(old)*w + float64(rtt)*(1-w)))
}

// Latency returns the target's latency EWMA, decayed towards zero by the
// time since the last sample while no call is in flight. Calls in flight
// stop the decay: a hung instance, whose calls never complete, must not
// come to look fast for want of samples (P2C would then pile every call on
// it, each waiting out its deadline).
func (t *Target) Latency() time.Duration {
	v := t.ewmaNanos.Load()
	if v == 0 {
		return 0
	}
	if t.inflight.Load() > 0 {
		return time.Duration(v)
	}
	idle := time.Since(t.born) - time.Duration(t.lastNanos.Load())
	if idle <= 0 {
		return time.Duration(v)
	}
	return time.Duration(float64(v) * math.Exp(-float64(idle)/float64(ewmaTau)))
}
