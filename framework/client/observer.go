package client

import (
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// Observer hears what a client does, for metrics. Methods are called on the
// call path, concurrently: they must be quick. Instances are named by their
// registry ID. Embed NopObserver to implement only some methods.
type Observer interface {
	// Picked reports that an attempt went to instance.
	Picked(service, instance string)
	// Retried reports that a call made another attempt after its
	// attempts so far had failed.
	Retried(service string)
	// RetryBudgetExhausted reports a call that wanted another attempt and
	// was refused one by the retry budget.
	RetryBudgetExhausted(service string)
	// BreakerChanged reports that instance's outlier breaker moved from one
	// state to another; to == outlier.Open is an ejection.
	BreakerChanged(service, instance string, from, to outlier.State)
	// InstanceReleased reports that instance left the client's set and its
	// last call has returned: nothing more is reported for it, so its
	// per-instance state (metric series) can go, unless another client
	// sharing the observer still holds the instance (InstanceObserver).
	InstanceReleased(service, instance string)
}

// HedgeObserver is an Observer that also hears of hedges: a call that
// sent another attempt beside a slow one still running
// (retry.WithHedging), no failure, unlike Retried. It is a separate
// interface, as StaleObserver is, so that an Observer written before it
// still compiles; such an Observer hears of no hedge. metrics.Client
// implements it (warren_client_hedges_total).
type HedgeObserver interface {
	Hedged(service string)
}

// InstanceObserver is an Observer that also hears each instance enter a
// client's set and each of the client's breakers of an instance leave.
// One observer may serve several clients of a service (bootstrap gives
// every client of a process one metrics.Client: an HTTP and a gRPC
// client of user, say); with these calls it can count the clients that
// hold an instance and keep the instance's state until the last lets it
// go, where InstanceReleased alone told it of one client's release only
// (audit o6 R1). It is a separate interface, as HedgeObserver is, so that
// an Observer written before it still compiles; such an Observer hears
// InstanceReleased as before. metrics.Client implements it.
type InstanceObserver interface {
	// InstanceAcquired reports that instance entered the client's set
	// (its first target with that ID was made), before any Picked for
	// it. The client's one InstanceReleased for it ends this.
	InstanceAcquired(service, instance string)
	// BreakerReleased reports that one of the client's breakers of
	// instance left with its target, in state last (Closed unless the
	// client had the instance ejected or probing); it reports no more
	// changes. It comes before the client's InstanceReleased of the
	// instance, or, for a record changed in place, while the instance
	// stays in the set with a new breaker (Closed).
	BreakerReleased(service, instance string, last outlier.State)
}

// NopObserver ignores everything.
type NopObserver struct{}

// Picked implements Observer.
func (NopObserver) Picked(string, string) {}

// Retried implements Observer.
func (NopObserver) Retried(string) {}

// Hedged implements HedgeObserver.
func (NopObserver) Hedged(string) {}

// RetryBudgetExhausted implements Observer.
func (NopObserver) RetryBudgetExhausted(string) {}

// BreakerChanged implements Observer.
func (NopObserver) BreakerChanged(string, string, outlier.State, outlier.State) {}

// InstanceReleased implements Observer.
func (NopObserver) InstanceReleased(string, string) {}

// breakerObserver adapts an Observer to the outlier detector of one
// service, turning instance strings into IDs, and logs ejections and
// readmissions: an ejection is over within seconds and the instance's
// series go when it leaves discovery (a hung instance's record expires
// soon after), so without a line the log has no trace of it (report j47c).
// An ejection and a readmission are one line each. A failed probe is one
// line per instance per reprobeLogEvery at most: a breaker moves at most
// once per cooldown, but while the panic threshold keeps a dead instance
// in (every instance of the service dead) it is probed on every call, and
// each failed probe was a line — ten a second (report j48d).
type breakerObserver struct {
	service string
	obs     Observer
	inst    InstanceObserver // obs, if it is one
	logger  log.Logger
	reprobe *reprobeLog
}

// reprobeLogEvery is how often a failed probe of one instance is logged;
// the line counts the ones in between.
const reprobeLogEvery = 10 * time.Second

// reprobeLog remembers, per instance, when a failed probe was last logged
// and how many failed since.
type reprobeLog struct {
	mu     sync.Mutex
	now    func() time.Time
	last   map[string]time.Time
	silent map[string]int
}

func newBreakerObserver(service string, obs Observer, logger log.Logger) breakerObserver {
	inst, _ := obs.(InstanceObserver)
	return breakerObserver{service: service, obs: obs, inst: inst, logger: logger,
		reprobe: &reprobeLog{now: time.Now, last: map[string]time.Time{}, silent: map[string]int{}}}
}

// due reports whether a failed probe of id is to be logged now, and how
// many were not since the last line.
func (r *reprobeLog) due(id string) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if last, ok := r.last[id]; ok && now.Sub(last) < reprobeLogEvery {
		r.silent[id]++
		return false, 0
	}
	n := r.silent[id]
	r.last[id], r.silent[id] = now, 0
	return true, n
}

// forget starts id over: its next failed probe is logged.
func (r *reprobeLog) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.last, id)
	delete(r.silent, id)
}

// BreakerChanged implements outlier.Observer, for a transition told
// without its Change.
func (b breakerObserver) BreakerChanged(instance string, from, to outlier.State) {
	b.BreakerChangedWith(instance, outlier.Change{From: from, To: to})
}

// BreakerChangedWith implements outlier.ChangeObserver: an ejection line
// says which rule ejected the instance, on what error and for how long,
// so a hung instance, one answering 500 and one a stalled host made late
// read apart (report j57b F2); a readmission says how long it was out.
func (b breakerObserver) BreakerChangedWith(instance string, c outlier.Change) {
	id := instanceID(instance)
	b.obs.BreakerChanged(b.service, id, c.From, c.To)
	switch {
	case c.To == outlier.Open && c.From == outlier.Closed:
		b.reprobe.forget(id)
		level.Warn(b.logger).Log("msg", "instance ejected: outlier detection took it out of rotation after failures in a row",
			"service", b.service, "instance", id, "reason", c.Reason, "cooldown", c.Cooldown, "last_error", lastError(c.Err))
	case c.To == outlier.Open:
		if ok, since := b.reprobe.due(id); ok {
			// The cooldown doubles only for a probe at its end; an early
			// probe (the panic threshold, ProbeEjected) keeps it.
			level.Info(b.logger).Log("msg", "ejected instance failed its probe; ejected again", "service", b.service, "instance", id,
				"cooldown", c.Cooldown, "last_error", lastError(c.Err), "failed_probes_not_logged", since)
		}
	case c.To == outlier.Closed && c.Reason == outlier.ReasonExpired:
		b.reprobe.forget(id)
		level.Info(b.logger).Log("msg", "ejected instance back in rotation unprobed: its cooldown was over and a failing instance needed its slot", "service", b.service, "instance", id,
			"out_for", c.Out.Round(time.Millisecond))
	case c.To == outlier.Closed:
		b.reprobe.forget(id)
		level.Info(b.logger).Log("msg", "ejected instance answered its probe; back in rotation", "service", b.service, "instance", id,
			"out_for", c.Out.Round(time.Millisecond))
	}
}

// lastErrorMax caps last_error: the line is for telling causes apart, and
// a transport's error may quote a whole body.
const lastErrorMax = 200

// lastError is err's text for an ejection line, cut to lastErrorMax.
func lastError(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) > lastErrorMax {
		n := lastErrorMax
		for n > 0 && !utf8.RuneStart(s[n]) { // not inside a rune
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

// BreakerReleased goes to an InstanceObserver only: the instance's
// release is reported once, by its transport's closer, after its last
// call (InstanceReleased), but an observer shared with other clients
// needs the state this client's breaker left in to know what the others
// still have. Its failed-probe count goes.
func (b breakerObserver) BreakerReleased(instance string, last outlier.State) {
	id := instanceID(instance)
	b.reprobe.forget(id)
	if b.inst != nil {
		b.inst.BreakerReleased(b.service, id, last)
	}
}

func instanceID(s string) string {
	if inst, err := registry.ParseInstance(s); err == nil {
		return inst.ID
	}
	return s
}

// countAttempt reports an attempt after the first to the observer, as a
// retry or a hedge (callNote.begin).
func (c *Client) countAttempt(kind int) {
	switch kind {
	case retryAttempt:
		c.obs.Retried(c.service)
	case hedgeAttempt:
		if h, ok := c.obs.(HedgeObserver); ok { // hedges are rare: asked each time
			h.Hedged(c.service)
		}
	}
}
