// Package shed keeps an instance fast under overload by refusing, at once,
// the requests it cannot serve in time, so its callers can take them to an
// instance that can.
//
// A Limiter admits a request unless the instance's own backlog says it is
// full: the requests it has in flight reached an adaptive limit. The limit
// adapts like Netflix's Gradient2: it grows while each window's latency
// stays within a tolerance of its long-run level and shrinks in
// proportion when it does not, and only windows in which at least half
// the limit was in flight move it. So an instance with few requests in
// flight never sheds, however slow the machine is: when other processes
// take the CPU, latency rises for everyone, and refusing this instance's
// few requests would not bring it down. After 2 s of such light windows
// (or of quiet) a limit that an incident cut drifts back up towards its
// start, so the next normal burst finds the limit a fresh instance has.
//
// A request's latency sample leaves out the time its handler waited on
// calls through a Warren client (internal/downstream; the middlewares put
// the record in the request's context): a hung dependency is not this
// instance being full.
//
// A CPU-bound handler never holds many requests in flight: its backlog
// waits in front of it, in the kernel and the Go runtime, before any of
// our code runs. So the limiter can also count the requests waiting there
// — the HTTP server's connections whose socket holds unread bytes
// (Limiter.ConnState, wired by transport/httpserver, puts them in an
// epoll set that one system call counts) — and, once more than the
// target have waited for a while (100 ms: a stall's burst drains
// sooner), refuse each request that finds more than the target waiting
// at that moment. It is the instance's own queue, bounded by its own
// connections, but it is off by default
// (WithWaitingTarget turns it on): on a machine starved for seconds, an
// instance with hundreds of calls in flight (a loaded CI run) finds them
// waiting past any persistence and would refuse them.
//
// Another signal, the Go runtime's CPU run queue (WithQueueProbe with
// RuntimeProbe), is off by default: it is process-wide, so it also fires
// when other processes starve this one of CPU (a loaded CI machine) or
// when other work in the process queues. Turn it on only for a process
// that runs one instance on CPUs of its own.
//
// Refusing is cheap (no decoding, no handler) and immediate, and the
// answer says "overloaded, try elsewhere" (Middleware: 503 with
// Retry-After and code "overloaded"), which Warren's client retries on
// another instance without counting it against this one's health.
//
// The limiter starts no goroutines: the request that finds a reading due
// takes it. docs/overload.md explains the choice and the settings.
package shed

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/downstream"
	"github.com/warren-mesh/warren/internal/gradient"
)

// Reason says why Acquire refused a request.
type Reason string

// Reasons.
const (
	// Admitted: not refused.
	Admitted Reason = ""
	// ReasonQueue: the CPU run queue is past its target (WithQueueProbe).
	ReasonQueue Reason = "queue"
	// ReasonLimit: requests in flight reached the adaptive limit.
	ReasonLimit Reason = "limit"
	// ReasonWaiting: more requests than the target wait in front of the
	// handler, and have for a while (WithWaitingTarget).
	ReasonWaiting Reason = "waiting"
)

// Limiter decides, per request, whether the instance takes it on. It is
// safe for concurrent use; one Limiter serves one instance (all its
// routes), since they share the CPUs.
type Limiter struct {
	now        func() time.Time
	probe      QueueProbe
	window     time.Duration
	minSamples int64
	interval   time.Duration

	inflight  atomic.Int64
	limit     atomic.Int64
	backlog   atomic.Bool  // the run queue is past its target
	queueLen  atomic.Int64 // last run queue length read
	delay     atomic.Int64 // last queue delay read, ns
	admitted  atomic.Uint64
	shedQueue atomic.Uint64
	shedLimit atomic.Uint64
	shedWait  atomic.Uint64

	wait waiting
	log  shedLog

	winSum   atomic.Int64 // ns of latency in the current window
	winCount atomic.Int64
	winPeak  atomic.Int64
	winStart atomic.Int64 // unix ns
	idleFrom atomic.Int64 // unix ns nothing was in flight from; 0: in use
	winIdle  atomic.Int64 // ns of the current window with nothing in flight
	probeAt  atomic.Int64 // unix ns of the last queue reading

	ratioAt   atomic.Int64  // unix ns of the last shed ratio update
	ratioBits atomic.Uint64 // float64 EWMA of the share of requests shed
	ratioMu   sync.Mutex
	ratioAdm  uint64 // counters at the last update
	ratioShed uint64

	gmu  sync.Mutex // held by the request closing a window
	grad gradient.Limit
	qmu  sync.Mutex // held by the request taking a queue reading
	qc   queueControl
}

type settings struct {
	initial, min, max int
	tolerance         float64
	window            time.Duration
	minSamples        int
	probe             QueueProbe
	interval          time.Duration
	perCPU            int
	minDelay          time.Duration
	waitPerCPU        int // 0: the waiting signal off
	waitPersist       time.Duration
	now               func() time.Time
	logger            log.Logger
	logEvery          time.Duration
}

// Option configures a Limiter. An option given a bad value makes New fail
// with an error that names it.
type Option func(*settings) error

// WithLimits sets the in-flight limit's start, floor and ceiling (default
// 200, 10, 2000). The floor keeps a few slow requests from starving an
// instance; the ceiling bounds memory under a flood of slow requests.
func WithLimits(initial, min, max int) Option {
	return func(s *settings) error {
		if min < 1 || max < min || initial < min || initial > max {
			return fmt.Errorf("shed.WithLimits(%d, %d, %d): want 1 ≤ min ≤ initial ≤ max", initial, min, max)
		}
		s.initial, s.min, s.max = initial, min, max
		return nil
	}
}

// WithTolerance sets how many times its long-run level a window's latency
// may reach before the in-flight limit shrinks (default 2).
func WithTolerance(f float64) Option {
	return func(s *settings) error {
		if !(f >= 1) {
			return fmt.Errorf("shed.WithTolerance(%v): want at least 1", f)
		}
		s.tolerance = f
		return nil
	}
}

// WithWindow sets how often the in-flight limit adapts: after d and at
// least minSamples finished requests (default 100ms, 10).
func WithWindow(d time.Duration, minSamples int) Option {
	return func(s *settings) error {
		if d <= 0 || minSamples < 1 {
			return fmt.Errorf("shed.WithWindow(%s, %d): want a positive window and at least 1 sample", d, minSamples)
		}
		s.window, s.minSamples = d, minSamples
		return nil
	}
}

// WithQueueTarget sets the CPU run queue the limiter keeps to when the
// queue signal is on (WithQueueProbe): it refuses requests while more than
// perCPU × GOMAXPROCS goroutines wait to run (default 8 per CPU, read
// every millisecond).
func WithQueueTarget(perCPU int, every time.Duration) Option {
	return func(s *settings) error {
		if perCPU < 1 || every <= 0 {
			return fmt.Errorf("shed.WithQueueTarget(%d, %s): want at least 1 per CPU and a positive interval", perCPU, every)
		}
		s.perCPU, s.interval = perCPU, every
		return nil
	}
}

// WithMinQueueDelay sets how long goroutines must wait to run before a
// long queue counts (default 1ms): many runnable goroutines that each run
// at once are no backlog.
func WithMinQueueDelay(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return fmt.Errorf("shed.WithMinQueueDelay(%s): negative", d)
		}
		s.minDelay = d
		return nil
	}
}

// WithQueueProbe turns the CPU run queue signal on with p (RuntimeProbe
// reads the Go runtime's); nil, the default, leaves it off. The runtime's
// queue is the whole process's and grows when other processes take the
// CPU, so use it only for a process that runs one instance on CPUs of its
// own (see the package doc).
func WithQueueProbe(p QueueProbe) Option {
	return func(s *settings) error { s.probe = p; return nil }
}

// WithWaitingTarget turns the waiting signal on: once more than
// perCPU × GOMAXPROCS requests have waited in front of the handler,
// reading after reading, for persist, refuse each request that finds
// more than that many waiting (docs/overload.md says what it measured).
// It counts only on servers that report their connections to
// Limiter.ConnState (transport/httpserver does), and only on Linux. Off
// by default: see the package doc. New fails if the system refuses the
// epoll set it counts with.
func WithWaitingTarget(perCPU int, persist time.Duration) Option {
	return func(s *settings) error {
		if perCPU < 1 || persist < 0 {
			return fmt.Errorf("shed.WithWaitingTarget(%d, %s): want at least 1 per CPU and a persistence of at least 0", perCPU, persist)
		}
		s.waitPerCPU, s.waitPersist = perCPU, persist
		return nil
	}
}

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(s *settings) error {
		if now == nil {
			return errors.New("shed.WithClock(nil)")
		}
		s.now = now
		return nil
	}
}

// New returns a Limiter with safe defaults: an in-flight limit that starts
// at 200, never under 10; neither the waiting signal nor the run queue
// signal.
func New(opts ...Option) (*Limiter, error) {
	s := settings{
		initial: 200, min: 10, max: 2000,
		tolerance: 2,
		window:    100 * time.Millisecond, minSamples: 10,
		interval: time.Millisecond, perCPU: 8, minDelay: time.Millisecond,
		now: time.Now,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("shed: nil option")
		}
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	l := &Limiter{
		now: s.now, probe: s.probe,
		window: s.window, minSamples: int64(s.minSamples), interval: s.interval,
		grad: gradient.New(s.initial, s.min, s.max, s.tolerance),
		log:  shedLog{logger: s.logger, every: int64(s.logEvery)},
		qc:   newQueueControl(s.perCPU*runtime.GOMAXPROCS(0), s.minDelay),
	}
	l.wait.ctl = waitControl{
		target: int64(s.waitPerCPU * runtime.GOMAXPROCS(0)),
		every:  int64(waitEvery), persist: int64(s.waitPersist), hold: int64(waitHold),
	}
	if s.waitPerCPU > 0 {
		p, err := newPoller()
		if err != nil {
			return nil, err
		}
		l.wait.poll = p
	}
	l.limit.Store(int64(s.initial))
	t := s.now().UnixNano()
	l.winStart.Store(t)
	l.idleFrom.Store(t)
	l.probeAt.Store(t)
	l.ratioAt.Store(t)
	if l.probe != nil {
		l.probe() // the first reading only sets the baseline
	}
	return l, nil
}

// Token is an admitted request. Call Release exactly once when it is done.
type Token struct {
	l     *Limiter
	start time.Time
	down  *downstream.Wait // set by the middlewares; nil: none
}

// watch gives the request under ctx a record of its waits on other
// services (Warren's clients mark their calls on it), left out of its
// latency sample at Release.
func (t *Token) watch(ctx context.Context) context.Context {
	if t.l == nil {
		return ctx
	}
	ctx, t.down = downstream.With(ctx, t.l.now)
	return ctx
}

// Acquire decides on one request: Admitted with a Token to Release, or
// the Reason it was refused (the Token is then inert).
func (l *Limiter) Acquire() (Token, Reason) {
	now := l.now()
	l.readQueue(now)
	l.wait.read(now.UnixNano())
	l.updateRatio(now)
	if l.wait.refuse() {
		l.shedWait.Add(1)
		l.log.refused(l, now.UnixNano(), ReasonWaiting)
		return Token{}, ReasonWaiting
	}
	if l.backlog.Load() {
		l.shedQueue.Add(1)
		l.log.refused(l, now.UnixNano(), ReasonQueue)
		return Token{}, ReasonQueue
	}
	n := l.inflight.Add(1)
	if n > l.limit.Load() {
		l.inflight.Add(-1)
		l.shedLimit.Add(1)
		l.log.refused(l, now.UnixNano(), ReasonLimit)
		return Token{}, ReasonLimit
	}
	if n == 1 {
		// The instance was idle until now: light time, whatever the rest
		// of the window does (see record).
		if from := l.idleFrom.Swap(0); from > 0 {
			l.winIdle.Add(max(0, now.UnixNano()-from))
		}
	}
	l.log.admitted(l, now.UnixNano())
	for {
		p := l.winPeak.Load()
		if n <= p || l.winPeak.CompareAndSwap(p, n) {
			break
		}
	}
	l.admitted.Add(1)
	return Token{l: l, start: now}, Admitted
}

// Release ends the request and records its latency. Releasing a refused
// request's Token does nothing.
func (t Token) Release() {
	if t.l == nil {
		return
	}
	now := t.l.now()
	if t.l.inflight.Add(-1) == 0 {
		t.l.idleFrom.Store(now.UnixNano())
		if t.l.inflight.Load() != 0 {
			// A request came in between: it found no idle start to
			// take, and none began.
			t.l.idleFrom.CompareAndSwap(now.UnixNano(), 0)
		}
	}
	// The time the handler waited on calls to other services is theirs,
	// not this instance's: a hung dependency must not read as this
	// instance being full (report j50a 1). The request still counts in
	// flight while it waits.
	t.l.record(now, max(0, now.Sub(t.start)-t.down.Total(now)))
}

// record adds a latency sample and closes the window when it is due.
func (l *Limiter) record(now time.Time, rtt time.Duration) {
	l.winSum.Add(int64(rtt))
	c := l.winCount.Add(1)
	start := l.winStart.Load()
	if now.UnixNano()-start < int64(l.window) || c < l.minSamples {
		return
	}
	if !l.gmu.TryLock() {
		return // another request is closing this window
	}
	defer l.gmu.Unlock()
	if l.winStart.Load() != start {
		return
	}
	cnt := l.winCount.Swap(0)
	sum := l.winSum.Swap(0)
	peak := l.winPeak.Swap(l.inflight.Load())
	idle := l.winIdle.Swap(0)
	l.winStart.Store(now.UnixNano())
	if cnt <= 0 {
		return
	}
	// A window that a quiet spell stretched (it closes after minSamples
	// requests) counts as the windows it spans: an idle instance's limit
	// drifts back towards its start (gradient.Limit) as a busy one's does.
	avg := time.Duration(sum / cnt)
	spans := int(min(now.UnixNano()-start, int64(1<<40)) / int64(l.window))
	if idleSpans := int(min(idle, int64(1<<40)) / int64(l.window)); idleSpans > 0 && 2*peak >= l.limit.Load() {
		// The spell ended in a burst that used the limit: the window
		// is the burst's, but the spell before it was light time all
		// the same (nothing in flight). Without this, 30 s of quiet
		// counted as nothing and the next burst met the limit an
		// incident had cut, window after window (report j50a 2).
		l.grad.UpdateSpan(avg, 0, idleSpans)
		spans = 1
	}
	lim := l.grad.UpdateSpan(avg, peak, spans)
	l.limit.Store(max(1, int64(math.Round(lim))))
}

// ratioEvery is how often the shed ratio is updated.
const ratioEvery = 100 * time.Millisecond

// updateRatio folds the last interval's decisions into the shed ratio.
func (l *Limiter) updateRatio(now time.Time) {
	last := l.ratioAt.Load()
	if now.UnixNano()-last < int64(ratioEvery) || !l.ratioAt.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if !l.ratioMu.TryLock() {
		return
	}
	defer l.ratioMu.Unlock()
	adm, shed := l.admitted.Load(), l.shedQueue.Load()+l.shedLimit.Load()+l.shedWait.Load()
	old := math.Float64frombits(l.ratioBits.Load())
	l.ratioBits.Store(math.Float64bits(foldRatio(old, adm-l.ratioAdm, shed-l.ratioShed, now.UnixNano()-last)))
	l.ratioAdm, l.ratioShed = adm, shed
}

// foldRatio folds the decisions taken since the last update, elapsed ago,
// into the shed ratio old. They were taken within its first interval: a
// decision after that would have updated the ratio itself. So they count
// as that one interval, and the rest of elapsed, in which nothing came,
// as intervals shedding nothing. (Counted as the last interval, the
// refusals an episode ended with were, after an hour of quiet, the whole
// ratio: Retry-After 5 s for the next episode's first callers.)
func foldRatio(old float64, admitted, shed uint64, elapsed int64) float64 {
	cur := 0.0
	if admitted+shed > 0 {
		cur = float64(shed) / float64(admitted+shed)
	}
	w := math.Pow(0.5, float64(min(elapsed, int64(ratioEvery)))/float64(ratioEvery))
	r := old*w + cur*(1-w)
	if quiet := elapsed - int64(ratioEvery); quiet > 0 {
		r *= math.Pow(0.5, float64(quiet)/float64(ratioEvery))
	}
	return r
}

// ShedRatio is the share of requests shed lately (an average over about
// the last few hundred milliseconds), from 0 to 1, as of the last request.
func (l *Limiter) ShedRatio() float64 { return math.Float64frombits(l.ratioBits.Load()) }

// shedRatioNow is ShedRatio brought up to now, for readers between
// requests (metrics): an idle instance sheds nothing.
func (l *Limiter) shedRatioNow(now time.Time) float64 {
	l.ratioMu.Lock()
	defer l.ratioMu.Unlock()
	elapsed := now.UnixNano() - l.ratioAt.Load()
	if elapsed < int64(ratioEvery) {
		return l.ShedRatio()
	}
	adm, shed := l.admitted.Load(), l.shedQueue.Load()+l.shedLimit.Load()+l.shedWait.Load()
	return foldRatio(l.ShedRatio(), adm-l.ratioAdm, shed-l.ratioShed, elapsed)
}

// readQueue takes a queue reading when one is due.
func (l *Limiter) readQueue(now time.Time) {
	if l.probe == nil {
		return
	}
	last := l.probeAt.Load()
	if now.UnixNano()-last < int64(l.interval) || !l.probeAt.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	if !l.qmu.TryLock() {
		return
	}
	defer l.qmu.Unlock()
	r := l.probe()
	l.backlog.Store(l.qc.update(r))
	l.queueLen.Store(int64(r.Runnable))
	l.delay.Store(int64(r.Delay))
}

// Stats is a Limiter's state, for metrics.
type Stats struct {
	// Admitted, ShedWaiting, ShedQueue and ShedLimit count decisions
	// since New.
	Admitted    uint64
	ShedWaiting uint64
	ShedQueue   uint64
	ShedLimit   uint64
	// Waiting is the requests waiting in front of the handler at the last
	// reading (its connections with unread bytes, counted up to 4096),
	// WaitingTarget the count refusals start above (0: the signal is
	// off), and Conns the server's connections between requests at that
	// reading.
	Waiting       int64
	WaitingTarget int64
	Conns         int64
	// Refusing says whether the waiting signal is armed: it refuses
	// every request that finds more than WaitingTarget waiting.
	Refusing bool
	// InFlight is the number of admitted requests not yet released.
	InFlight int64
	// Limit is the current in-flight limit.
	Limit int64
	// Backlog says whether the run queue is past its target now (requests
	// are being refused for it).
	Backlog bool
	// QueueLength and QueueDelay are the last run queue reading.
	QueueLength int64
	QueueDelay  time.Duration
	// QueueTarget is the run queue length refusals start above (0: the
	// signal is off, as for WaitingTarget).
	QueueTarget int64
	// ShedRatio is ShedRatio() brought up to now: it falls while no
	// request comes.
	ShedRatio float64
}

// Stats returns the current state.
func (l *Limiter) Stats() Stats {
	queueTarget := int64(l.qc.target)
	if l.probe == nil {
		queueTarget = 0 // off: a target that applies to nothing would read as one in force
	}
	return Stats{
		Admitted:      l.admitted.Load(),
		ShedWaiting:   l.shedWait.Load(),
		ShedQueue:     l.shedQueue.Load(),
		ShedLimit:     l.shedLimit.Load(),
		Waiting:       l.wait.last.Load(),
		WaitingTarget: l.wait.ctl.target,
		Conns:         l.wait.conns.Load(),
		Refusing:      l.wait.armed.Load(),
		InFlight:      l.inflight.Load(),
		Limit:         l.limit.Load(),
		Backlog:       l.backlog.Load(),
		QueueLength:   l.queueLen.Load(),
		QueueDelay:    time.Duration(l.delay.Load()),
		QueueTarget:   queueTarget,
		ShedRatio:     l.shedRatioNow(l.now()),
	}
}
