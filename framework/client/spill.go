package client

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
)

// spillable is an instancer that can add the next region's instances to
// the set it publishes (registry.Failover; see its Spill).
type spillable interface {
	// Spill(true) asks for the next region's instances beside the
	// active region's and reports whether the request is held;
	// Spill(false) ends it.
	Spill(on bool) bool
	// Spilling reports whether the request is still in force (the
	// instancer ends it by itself when the active region changes or
	// lists a new instance).
	Spilling() bool
}

// Thresholds of "failing" for a target the breaker has not ejected: the
// outlier detector's defaults (WithConsecutiveFailures,
// WithConsecutiveTimeouts). The panic threshold never lets the detector
// eject every instance — at least one stays in, however dead — so the
// client counts runs of failures itself.
const (
	spillFailures = 5
	spillTimeouts = 2
	// spillReturn is how many answers in a row an instance that was
	// failing when the spill began must give before the spill ends: its
	// breaker closes on one good probe, and one lucky answer from a
	// flapping instance should not take the region's callers back.
	spillReturn = 3
	// spillRetry spaces Spill(true) asks the instancer refused (one
	// source; nothing listed).
	spillRetry = time.Second
	// spillCheck spaces the checks, on answers from the next region,
	// that the spill still holds (see whileOnLocked).
	spillCheck = 100 * time.Millisecond
)

// spill decides when the client's instancer spills: on when every target
// of the set is ejected or failing, off when one of the targets that were
// failing then answers again (spillReturn times in a row) or all of them
// have left the set. It acts on the call path, from the outcomes of
// attempts: no goroutine.
type spill struct {
	service string
	logger  log.Logger
	targets func() []*balancer.Target
	ejected func() int // the detector's ejected count; nil: no detector

	src atomic.Pointer[spillRef] // nil until the instancer is known to spill

	// failing counts targets with a run of failures; on is whether this
	// client's Spill(true) is in force: with both zero, a good answer
	// costs two atomic loads.
	failing atomic.Int32
	on      atomic.Bool
	fromSet atomic.Pointer[map[*balancer.Target]struct{}] // while on: from's keys, read without mu
	checkAt atomic.Int64                                  // unix ns: the next check while on

	mu      sync.Mutex
	runs    map[*balancer.Target]*spillRun
	down    int                      // runs at a threshold
	from    map[*balancer.Target]int // while on: the targets failing at its start, and their answers in a row
	retryAt time.Time                // after a refused Spill(true)
	closed  bool
}

type spillRef struct{ s spillable }

// spillRun is one target's run of failures.
type spillRun struct{ fails, timeouts int }

func (r *spillRun) isDown() bool { return r.fails >= spillFailures || r.timeouts >= spillTimeouts }

func newSpill(service string, logger log.Logger) *spill {
	return &spill{service: service, logger: logger, runs: map[*balancer.Target]*spillRun{}}
}

// use makes src the instancer asked, if it can spill.
func (s *spill) use(src sd.Instancer) {
	if sp, ok := src.(spillable); ok {
		s.src.Store(&spillRef{sp})
	}
}

// spillCapture passes on a Discovery's instancers and hands the one it
// makes to its spill: the snapshot wrapper around it (client.WithSnapshot)
// does not spill, and may make it later, in the background.
type spillCapture struct {
	d     registry.Discovery
	spill *spill
}

func (x spillCapture) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	in, err := x.d.Instancer(ctx, service)
	if err == nil {
		x.spill.use(in)
	}
	return in, err
}

// record takes the outcome of one attempt on t. err is the attempt's
// error; ctx its context.
func (s *spill) record(ctx context.Context, t *balancer.Target, err error) {
	ref := s.src.Load()
	if ref == nil || errors.Is(err, balancer.ErrRetired) {
		return
	}
	failed, timeout := err != nil && instanceFailure(err), false
	if err != nil && ctx.Err() != nil {
		// As balancer.Target.Call counts it for the breaker.
		switch cause := context.Cause(ctx); {
		case ctx.Err() == context.DeadlineExceeded:
			failed, timeout = true, true
		case errors.Is(cause, retry.ErrOutpaced):
			failed = true // a hedge elsewhere answered first
		default:
			return // the caller gave up, or a needless hedge: nothing learnt
		}
	}
	if !failed {
		// The call path's usual case: nothing to learn from an answer
		// unless a run of failures is on, or, while spilling, unless it
		// is from an instance that was failing at its start (the next
		// region's serve the calls then), or the check is due.
		switch on := s.on.Load(); {
		case !on && s.failing.Load() == 0:
			return
		case on && !s.isFrom(t) && !s.checkDue():
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	r := s.runs[t]
	switch {
	case failed:
		if r == nil {
			r = &spillRun{}
			s.runs[t] = r
			s.failing.Add(1)
		}
		was := r.isDown()
		r.fails++
		if timeout {
			r.timeouts++
		}
		if !was && r.isDown() {
			s.down++
		}
	case r != nil:
		s.dropLocked(t, r)
	}
	if s.on.Load() {
		s.whileOnLocked(ref.s, t, err == nil, failed)
		return
	}
	if failed {
		s.maybeOnLocked(ref.s)
	}
}

func (s *spill) dropLocked(t *balancer.Target, r *spillRun) {
	if r.isDown() {
		s.down--
	}
	delete(s.runs, t)
	s.failing.Add(-1)
}

// maybeOnLocked turns spilling on if every target is ejected or failing.
func (s *spill) maybeOnLocked(src spillable) {
	ts := s.targets()
	if len(ts) == 0 {
		return
	}
	s.pruneLocked(len(ts))
	ejected := 0
	if s.ejected != nil {
		ejected = s.ejected()
	}
	if s.down+ejected < len(ts) { // cheap bound first: usually false
		return
	}
	for _, t := range ts {
		if !s.downLocked(t) {
			return
		}
	}
	now := time.Now()
	if now.Before(s.retryAt) {
		return
	}
	if !src.Spill(true) {
		s.retryAt = now.Add(spillRetry)
		return
	}
	s.from = make(map[*balancer.Target]int, len(ts))
	set := make(map[*balancer.Target]struct{}, len(ts))
	for _, t := range ts {
		s.from[t] = 0
		set[t] = struct{}{}
	}
	s.fromSet.Store(&set)
	s.on.Store(true)
	level.Warn(s.logger).Log("msg", "every instance of the service is ejected or failing; discovery asked to add the next region's instances",
		"service", s.service, "instances", len(ts))
}

// downLocked reports whether t is ejected (its breaker is not closed) or
// failing (a run at a threshold).
func (s *spill) downLocked(t *balancer.Target) bool {
	if b := t.Breaker(); b != nil && b.State() != outlier.Closed {
		return true
	}
	r := s.runs[t]
	return r != nil && r.isDown()
}

// whileOnLocked follows the targets that were failing when the spill
// began, and ends it when one answers spillReturn times in a row with its
// breaker closed, or when none is left in the set.
func (s *spill) whileOnLocked(src spillable, t *balancer.Target, ok, failed bool) {
	if !src.Spilling() {
		// The instancer ended it: its active region changed or listed a
		// new instance. Start over from the set as it is now.
		s.offLocked()
		level.Info(s.logger).Log("msg", "discovery ended the spill (the local region changed); calls use its instances", "service", s.service)
		return
	}
	if n, in := s.from[t]; in {
		switch {
		case ok:
			n++
			if b := t.Breaker(); n >= spillReturn && (b == nil || b.State() == outlier.Closed) {
				src.Spill(false)
				s.offLocked()
				level.Info(s.logger).Log("msg", "an instance that was failing answers again; discovery stops adding the next region's instances",
					"service", s.service, "instance", instanceID(t.ID))
				return
			}
			s.from[t] = n
		case failed:
			s.from[t] = 0
		}
	}
	for f := range s.from {
		if !f.Retired() {
			return
		}
	}
	// Every one left the set (their records expired, or they were
	// replaced): the local region is another set now.
	src.Spill(false)
	s.offLocked()
	level.Info(s.logger).Log("msg", "the failing instances left discovery; discovery stops adding the next region's instances", "service", s.service)
}

func (s *spill) offLocked() {
	s.on.Store(false)
	s.from = nil
	s.fromSet.Store(nil)
}

// isFrom reports whether t was failing when the spill began.
func (s *spill) isFrom(t *balancer.Target) bool {
	p := s.fromSet.Load()
	if p == nil {
		return false
	}
	_, ok := (*p)[t]
	return ok
}

// checkDue reports, once per spillCheck, that the spill's end by the
// instancer or by its instances leaving is to be checked.
func (s *spill) checkDue() bool {
	now := time.Now().UnixNano()
	at := s.checkAt.Load()
	return now >= at && s.checkAt.CompareAndSwap(at, now+int64(spillCheck))
}

// pruneLocked forgets the runs of targets that left the set, when there
// are more runs than targets.
func (s *spill) pruneLocked(n int) {
	if len(s.runs) <= n {
		return
	}
	for t, r := range s.runs {
		if t.Retired() {
			s.dropLocked(t, r)
		}
	}
}

// close ends this client's spill, if it is on: the instancer may outlive
// the client (NewFromInstancer). Idempotent.
func (s *spill) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if ref := s.src.Load(); ref != nil && s.on.Load() {
		ref.s.Spill(false)
	}
	s.offLocked()
}
