package fallback

import (
	"context"
	"sync"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// A degraded answer is a 200 to the caller's own client, so without a
// trace an outage that the fallback hides leaves none (report j57b F5):
// a Trace counts every answer a fallback served and logs them, at most a
// line per method per interval.

// Observer hears each answer a fallback served in place of a failed call,
// for metrics (metrics.Fallbacks counts them). It is called on the call
// path, concurrently: it must be quick.
type Observer interface {
	// FallbackServed reports that method of service failed with code (the
	// svcerr kind of the failure, e.g. "unavailable") and a fallback
	// answered in its place.
	FallbackServed(service, method, code string)
}

// LogEvery is how often a Trace logs a method's fallbacks by default: the
// first one at once, then at most one line per LogEvery, which counts
// those served since the previous line.
const LogEvery = 10 * time.Second

// Option configures a Trace.
type Option func(*Trace)

// WithLogger logs served fallbacks to l at warn level (default: nowhere).
func WithLogger(l log.Logger) Option { return func(t *Trace) { t.logger = l } }

// WithObserver reports served fallbacks to o (default: none).
func WithObserver(o Observer) Option { return func(t *Trace) { t.obs = o } }

// WithLogEvery sets how often a method's fallbacks are logged at most
// (default LogEvery).
func WithLogEvery(d time.Duration) Option { return func(t *Trace) { t.every = d } }

// Trace records the fallbacks served for one called service. It is safe
// for concurrent use; the zero of its options records nothing.
type Trace struct {
	service string
	logger  log.Logger
	obs     Observer
	every   time.Duration
	now     func() time.Time

	mu   sync.Mutex
	last map[string]*methodLog
}

// methodLog is one method's logging state: when it last logged, and what
// was served since (the line names the cause of the last one).
type methodLog struct {
	at     time.Time
	served int
	// lastAt and lastCause are those of the latest fallback counted in
	// served, to close an episode that ended between two lines.
	lastAt    time.Time
	lastCause error
}

// NewTrace returns a Trace for the fallbacks of service's methods.
func NewTrace(service string, opts ...Option) *Trace {
	t := &Trace{service: service, every: LogEvery, now: time.Now, last: map[string]*methodLog{}}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Served records that a fallback answered method's call that failed with
// cause.
func (t *Trace) Served(method string, cause error) {
	code := string(svcerr.KindOf(cause))
	if t.obs != nil {
		t.obs.FallbackServed(t.service, method, code)
	}
	if t.logger == nil {
		return
	}
	t.mu.Lock()
	m := t.last[method]
	if m == nil {
		m = &methodLog{}
		t.last[method] = m
	}
	now := t.now()
	if !m.at.IsZero() && now.Sub(m.at) < t.every {
		m.served++
		m.lastAt, m.lastCause = now, cause
		t.mu.Unlock()
		return
	}
	// Those counted since the previous line belong to this episode only
	// if one was served within the interval; else their episode ended
	// quietly and gets its own line, with when it ended, rather than
	// being added to this unrelated one (r58a N2: 140 answers of an
	// outage reappeared 10 min later under another cause).
	var ended *methodLog
	if m.served > 0 && now.Sub(m.lastAt) >= t.every {
		ended = &methodLog{at: m.at, served: m.served, lastAt: m.lastAt, lastCause: m.lastCause}
		m.served, m.at = 0, time.Time{}
	}
	served, since := m.served+1, m.at
	m.at, m.served = now, 0
	t.mu.Unlock()

	if ended != nil {
		level.Warn(t.logger).Log("msg", "served fallback: calls failed and were answered with a degraded answer",
			"service", t.service, "method", method, "served", ended.served, "code", string(svcerr.KindOf(ended.lastCause)),
			"err", ended.lastCause, "since", ended.at.UTC().Format(time.RFC3339), "until", ended.lastAt.UTC().Format(time.RFC3339))
	}
	kv := []any{"msg", "serving fallback: calls failed and were answered with a degraded answer",
		"service", t.service, "method", method, "served", served, "code", code, "err", cause}
	if !since.IsZero() {
		kv = append(kv, "since", since.UTC().Format(time.RFC3339))
	}
	level.Warn(t.logger).Log(kv...)
}

// Traced returns f recording on t each answer it serves (its nil-error
// returns) as a fallback of method; f itself when t or f is nil.
func Traced[Req, Resp any](t *Trace, method string, f Func[Req, Resp]) Func[Req, Resp] {
	if t == nil || f == nil {
		return f
	}
	return func(ctx context.Context, req Req, err error) (Resp, error) {
		resp, ferr := f(ctx, req, err)
		if ferr == nil {
			t.Served(method, err)
		}
		return resp, ferr
	}
}
