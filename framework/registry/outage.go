package registry

import (
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// DefaultOutageReminder is how often OutageLog repeats that a registry
// still cannot be read.
const DefaultOutageReminder = time.Minute

// OutageLog logs a registry that cannot be read the way an operator reads
// a log: one warning when reads start failing, a reminder at most every
// DefaultOutageReminder while they keep failing (with how long and how
// many tries), and one line when a read succeeds again. An instancer
// retries with backoff; logging each retry put a line per service every
// few seconds into a long outage, and the line that mattered — reads work
// again — was missing.
//
// The zero value is not usable: make one with NewOutageLog. Not safe for
// concurrent use: the one goroutine that reads the registry owns it.
type OutageLog struct {
	logger log.Logger
	what   string
	every  time.Duration
	now    func() time.Time

	since    time.Time // first failure of this outage; zero when reads work
	lastWarn time.Time
	failures int
	read     bool // a read has succeeded: there is a last good set to keep
}

// NewOutageLog returns an OutageLog writing to logger about what (the
// registry's name, as in "cannot read etcd").
func NewOutageLog(logger log.Logger, what string) *OutageLog {
	return &OutageLog{logger: logger, what: what, every: DefaultOutageReminder, now: time.Now}
}

// Failed notes a failed read. keyvals are logged with it (the set kept,
// say); err always is.
//
// Before any read has succeeded there is no set to keep, and the line says
// so: "keeping last good set instances=0" beside a snapshot's "instances=2"
// read as a contradiction (report j47c F9).
func (o *OutageLog) Failed(err error, keyvals ...any) {
	now := o.now()
	o.failures++
	kept := "; keeping last good set"
	if !o.read {
		kept = "; nothing read yet (a snapshot, if the client has one, serves meanwhile)"
	}
	switch {
	case o.since.IsZero():
		o.since, o.lastWarn = now, now
		level.Warn(o.logger).Log(append([]any{"msg", "cannot read " + o.what + kept}, append(keyvals, "err", err)...)...)
	case now.Sub(o.lastWarn) >= o.every:
		o.lastWarn = now
		level.Warn(o.logger).Log(append([]any{"msg", "still cannot read " + o.what + kept,
			"for", now.Sub(o.since).Round(time.Second), "failures", o.failures}, append(keyvals, "err", err)...)...)
	default:
		level.Debug(o.logger).Log(append([]any{"msg", "cannot read " + o.what, "failures", o.failures}, append(keyvals, "err", err)...)...)
	}
}

// Recovered notes a read that succeeded. It logs only after failures.
func (o *OutageLog) Recovered(keyvals ...any) {
	o.read = true
	if o.since.IsZero() {
		return
	}
	level.Info(o.logger).Log(append([]any{"msg", o.what + " readable again",
		"after", o.now().Sub(o.since).Round(time.Millisecond), "failures", o.failures}, keyvals...)...)
	o.since, o.failures = time.Time{}, 0
}

// Failing reports whether the last read failed.
func (o *OutageLog) Failing() bool { return !o.since.IsZero() }
