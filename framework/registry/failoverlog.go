package registry

import (
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// FailoverObserver is an Observer that also hears which source of a
// Failover serves a service: the metrics one keeps
// warren_registry_failover_source{service,source} at 1 for it and 0 for
// the others, so an on-call sees which region callers use (report j48d).
// While the Failover spills (Failover.Spill), the source spilled to is
// active too: two sources at 1 read "spilling".
type FailoverObserver interface {
	FailoverSource(service, source string, active bool)
}

// ReportFailover logs each change of the source f publishes for service
// and tells obs (when it is a FailoverObserver). names[i] names source i
// as the operator configured it (the local datacenter or prefix first);
// kind says what a name is ("datacenter", "prefix"). A start on the
// local source is quiet; a failover is a warning, the return and a start
// elsewhere are said too. A spill (Failover.Spill) is a warning and its
// end is said.
func ReportFailover(f *Failover, service, kind string, names []string, logger log.Logger, obs Observer) {
	fo, _ := obs.(FailoverObserver)
	name := func(i int) string {
		if i < 0 || i >= len(names) {
			return ""
		}
		return names[i]
	}
	if fo != nil {
		for _, n := range names {
			fo.FailoverSource(service, n, false)
		}
	}
	spilled := -1
	f.OnSpill(func(active, to int) {
		// Hooks run one at a time (under the Failover's publication
		// order), so spilled needs no lock.
		if to < 0 {
			if fo != nil && spilled >= 0 && spilled != active {
				fo.FailoverSource(service, name(spilled), false)
			}
			level.Info(logger).Log("msg", "discovery stops spilling: callers use "+name(active)+" alone",
				"service", service, kind, name(active), "from", name(spilled))
			spilled = -1
			return
		}
		if fo != nil {
			if spilled >= 0 && spilled != active {
				fo.FailoverSource(service, name(spilled), false)
			}
			fo.FailoverSource(service, name(to), true)
		}
		spilled = to
		level.Warn(logger).Log("msg", "discovery spills to "+name(to)+": callers found every instance in "+name(active)+" failing; they stay listed and are probed",
			"service", service, kind, name(to), "from", name(active))
	})
	// Only the first publication can be the quiet start: a later switch
	// from -1 is a return after no source had an instance, which was
	// warned and must be said to be over.
	started := false
	f.OnSwitch(func(from, to int) {
		first := !started
		started = true
		if fo != nil {
			if from >= 0 {
				fo.FailoverSource(service, name(from), false)
			}
			if to >= 0 {
				fo.FailoverSource(service, name(to), true)
			}
		}
		switch {
		case first && to == 0:
			// The usual start: the local source serves.
		case to > 0:
			level.Warn(logger).Log("msg", "discovery fails over: no instance in the preferred "+kind+"s; callers use "+name(to),
				"service", service, kind, name(to), "preferred", name(0))
		case to == 0 && from < 0:
			level.Info(logger).Log("msg", "discovery back to the local "+kind, "service", service, kind, name(0), "from", "none")
		case to == 0:
			level.Info(logger).Log("msg", "discovery back to the local "+kind, "service", service, kind, name(0), "from", name(from))
		default: // to == -1
			level.Warn(logger).Log("msg", "no "+kind+" has an instance of the service", "service", service, "tried", strings.Join(names, ","))
		}
	})
}
