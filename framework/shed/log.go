package shed

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// DefaultLogEvery is how often a Limiter with a logger writes a line while
// it keeps refusing requests.
const DefaultLogEvery = 10 * time.Second

// WithLogger makes the Limiter say when it sheds: the first refusal after
// a quiet interval at once (reason, limit, in flight), then at most one
// line per every while refusals go on, counting them by reason, and one
// when requests are admitted again after refusals nobody has read about
// yet. An overloaded instance otherwise looks healthy in its access log
// and request series, which hold only the requests it served (report
// j47c). Refusals come as fast as callers send, so a line per refusal
// would flood the log. every ≤ 0 is DefaultLogEvery.
func WithLogger(logger log.Logger, every time.Duration) Option {
	return func(s *settings) error {
		if logger == nil {
			logger = log.NewNopLogger()
		}
		if every <= 0 {
			every = DefaultLogEvery
		}
		s.logger, s.logEvery = logger, every
		return nil
	}
}

// shedLog is the Limiter's throttled account of its refusals. The hot
// path touches only atomics: an admitted request reads pending, a refused
// one adds to the counts and reads lastLine; the mutex is taken only to
// write a line.
type shedLog struct {
	logger   log.Logger // nil: off
	every    int64      // ns
	pending  atomic.Uint64
	byReason [3]atomic.Uint64 // refusals since the last line, by logReasons
	lastLine atomic.Int64     // unix ns of the last line; 0: none yet
	lastShed atomic.Int64     // unix ns of the last refusal

	mu sync.Mutex
}

// logReasons are the reasons in byReason's order.
var logReasons = [3]Reason{ReasonLimit, ReasonWaiting, ReasonQueue}

// refused records a refusal at now and writes a line if one is due.
func (g *shedLog) refused(l *Limiter, now int64, why Reason) {
	if g.logger == nil {
		return
	}
	if prev := g.lastShed.Swap(now); now-prev >= 2*g.every && g.pending.Load() > 0 {
		// Refusals no line told yet ended a quiet spell ago: they are an
		// earlier episode's, told as such before this one is announced.
		g.mu.Lock()
		if g.pending.Load() > 0 && g.lastLine.Load() <= prev { // not told meanwhile
			g.summary(l, prev, "shed load", true)
		}
		g.mu.Unlock()
	}
	first := g.pending.Add(1) == 1
	for i, r := range logReasons {
		if r == why {
			g.byReason[i].Add(1)
		}
	}
	if last := g.lastLine.Load(); last != 0 && now-last < g.every {
		return // the interval's line is not due
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	last := g.lastLine.Load()
	switch {
	case last == 0 || now-last >= 2*g.every && first:
		// The first refusal, or the first after a quiet spell.
		level.Warn(g.logger).Log("msg", "shedding load: refusing requests the instance cannot serve in time (503 overloaded)",
			"reason", why, "limit", l.limit.Load(), "in_flight", l.inflight.Load())
		g.reset(now)
	case now-last >= g.every:
		g.summary(l, now, "still shedding load", false)
	}
}

// admitted writes the summary of refusals not yet logged once the
// interval is over: the instance is admitting again.
func (g *shedLog) admitted(l *Limiter, now int64) {
	if g.logger == nil || g.pending.Load() == 0 || now-g.lastLine.Load() < g.every {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.pending.Load() > 0 && now-g.lastLine.Load() >= g.every {
		if last := g.lastShed.Load(); now-last >= 2*g.every {
			// The refusals ended a quiet spell ago: the line is of then,
			// so the next refusal is announced as an episode of its own.
			g.summary(l, last, "shed load", true)
			return
		}
		g.summary(l, now, "shed load", false)
	}
}

// summary writes the line of the refusals no line told yet, as of now;
// until says now is the last refusal, a while ago (the line says when).
func (g *shedLog) summary(l *Limiter, now int64, msg string, until bool) {
	kv := []any{"msg", msg, "refused", g.pending.Load(), "over", time.Duration(now - g.lastLine.Load()).Round(time.Millisecond)}
	if until {
		kv = append(kv, "until", time.Unix(0, now).UTC())
	}
	for i, r := range logReasons {
		if n := g.byReason[i].Load(); n > 0 {
			kv = append(kv, "refused_"+string(r), n)
		}
	}
	kv = append(kv, "limit", l.limit.Load(), "in_flight", l.inflight.Load(), "shed_ratio", l.ShedRatio())
	level.Warn(g.logger).Log(kv...)
	g.reset(now)
}

func (g *shedLog) reset(now int64) {
	g.pending.Store(0)
	for i := range g.byReason {
		g.byReason[i].Store(0)
	}
	g.lastLine.Store(now)
}
