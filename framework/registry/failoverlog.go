package registry

import (
	"slices"
	"strings"
	"sync"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// FailoverObserver is an Observer that also hears which source of a
// Failover serves a service: the metrics one keeps
// warren_registry_failover_source{service,source} at 1 for it and 0 for
// the others, so an on-call sees which region callers use (report j48d).
// While the Failover spills (Failover.Spill), the source spilled to is
// active too: two sources at 1 read "spilling".
//
// ReportFailover tells each Failover's changes once: active true when a
// source becomes active for that Failover, false when it no longer is or
// the Failover stops. An observer shared by several Failovers of one
// service (an HTTP and a gRPC client, the edge, the mesh page) counts
// them, as the metrics one does.
type FailoverObserver interface {
	FailoverSource(service, source string, active bool)
}

// FailoverSourcesObserver is a FailoverObserver that is also told a
// Failover's sources when ReportFailover starts following it, to show
// each (at 0 unless another Failover has it active). A FailoverObserver
// without it is told false for each source instead, as before; a
// counting observer must have it, or that false would take a sibling's
// count.
type FailoverSourcesObserver interface {
	FailoverSources(service string, sources []string)
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
	shown := &shownSources{fo: fo, service: service, name: name, on: map[int]bool{}}
	if fl, ok := fo.(FailoverSourcesObserver); ok {
		fl.FailoverSources(service, names)
	} else if fo != nil {
		for _, n := range names {
			fo.FailoverSource(service, n, false)
		}
	}
	spilled := -1
	f.OnSpill(func(active, to int) {
		// Hooks run one at a time (under the Failover's publication
		// order), so spilled needs no lock.
		if to < 0 {
			shown.show(active)
			level.Info(logger).Log("msg", "discovery stops spilling: callers use "+name(active)+" alone",
				"service", service, kind, name(active), "from", name(spilled))
			spilled = -1
			return
		}
		shown.show(active, to)
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
		shown.show(to, spilled)
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
	// A Failover stopped while failed over or spilling (a Registry.Close
	// before its client's Close) left its 1 for the process's life.
	f.OnStop(shown.stop)
}

// shownSources is what one Failover has told its FailoverObserver is
// active, so each change is told once and a stop gives all back. mu
// because Stop's hook runs outside the publication order.
type shownSources struct {
	fo      FailoverObserver
	service string
	name    func(int) string

	mu      sync.Mutex
	on      map[int]bool
	stopped bool
}

// show tells fo that the sources in want (-1: none) are active and the
// others it was told of are not.
func (s *shownSources) show(want ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fo == nil || s.stopped {
		return
	}
	s.showLocked(want...)
}

func (s *shownSources) showLocked(want ...int) {
	for i := range s.on {
		if !slices.Contains(want, i) {
			delete(s.on, i)
			s.fo.FailoverSource(s.service, s.name(i), false)
		}
	}
	for _, i := range want {
		if i >= 0 && !s.on[i] {
			s.on[i] = true
			s.fo.FailoverSource(s.service, s.name(i), true)
		}
	}
}

// stop gives back every source shown; a hook that runs later (a Spill
// racing Stop) tells nothing.
func (s *shownSources) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fo != nil && !s.stopped {
		s.showLocked()
	}
	s.stopped = true
}
