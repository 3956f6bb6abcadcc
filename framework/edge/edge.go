// Package edge follows discovery for proxies that sit in front of a mesh
// (nginx, an xDS control plane): a Watcher subscribes to the instancers of
// a list of services on any registry.Discovery, coalesces bursts of
// changes, and hands one consistent Snapshot of every service at a time to
// an apply function. The proxies' packages (edge/nginx, edge/xds) turn a
// Snapshot into their own configuration.
package edge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/registry"
)

// Service is one service's instances at a moment, sorted by ID.
type Service struct {
	Name      string
	Instances []registry.Instance
	// Unlisted reports that the registry has not listed the service since
	// the Watcher started (it was unreachable from the start). Instances
	// is then empty and says nothing about the service: a proxy keeps
	// serving what it had for it (a file or snapshot from its previous
	// run), never an empty set. (The zero value, listed, is what a
	// snapshot built by hand means.)
	Unlisted bool
	// Err is the instancer's last error (registry unreachable); Instances
	// then holds the last set the registry gave, which proxies keep
	// serving.
	Err error
}

// Snapshot is every watched service at one moment, in the order they were
// listed.
type Snapshot struct {
	Services []Service
	// Version counts the snapshots a Watcher produced, from 1.
	Version uint64
	// Oldest is when the oldest change this snapshot carries reached the
	// watcher: the time from Oldest to the proxy serving the snapshot is
	// the propagation delay the watcher and the proxy add.
	Oldest time.Time
}

// Service returns the named service and whether the snapshot has it.
func (s Snapshot) Service(name string) (Service, bool) {
	for _, svc := range s.Services {
		if svc.Name == name {
			return svc, true
		}
	}
	return Service{}, false
}

// Watcher follows a set of services. Build it with NewWatcher; Run it
// once.
type Watcher struct {
	disc     registry.Discovery
	services []string
	o        options
}

type options struct {
	debounce  time.Duration
	maxDelay  time.Duration
	startWait time.Duration
	retry     time.Duration
	logger    log.Logger
}

// Option adjusts a Watcher.
type Option func(*options)

// WithDebounce sets how long the set must stay quiet before it is applied
// (default 200 ms): a burst of registrations (a deployment) becomes one
// reload. Withdrawn instances leave the proxy within debounce plus the
// proxy's reload time, which must stay under the services' --grace.
func WithDebounce(d time.Duration) Option { return func(o *options) { o.debounce = d } }

// WithMaxDelay bounds how long a change waits while changes keep coming
// (default 1 s): a registry that never goes quiet still reaches the proxy.
func WithMaxDelay(d time.Duration) Option { return func(o *options) { o.maxDelay = d } }

// WithStartWait bounds the wait for every service's first listing before
// the first snapshot (default 10 s); a service not listed by then (an
// error event is not a listing) goes out with Unlisted set and its
// error, which proxies must not take for an empty set.
func WithStartWait(d time.Duration) Option { return func(o *options) { o.startWait = d } }

// WithRetry sets how soon a failed apply is tried again while nothing
// changes (default 5 s).
func WithRetry(d time.Duration) Option { return func(o *options) { o.retry = d } }

// WithLogger sets the logger (default: discard).
func WithLogger(l log.Logger) Option { return func(o *options) { o.logger = l } }

// NewWatcher returns a Watcher of services on disc. Every name must be a
// valid service name, listed once.
func NewWatcher(disc registry.Discovery, services []string, opts ...Option) (*Watcher, error) {
	o := options{debounce: 200 * time.Millisecond, maxDelay: time.Second, startWait: 10 * time.Second, retry: 5 * time.Second, logger: log.NewNopLogger()}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case disc == nil:
		return nil, errors.New("edge: no discovery")
	case len(services) == 0:
		return nil, errors.New("edge: no service to watch")
	case o.debounce < 0 || o.maxDelay < o.debounce || o.startWait <= 0 || o.retry <= 0:
		return nil, fmt.Errorf("edge: want 0 ≤ debounce (%s) ≤ max delay (%s), positive start wait (%s) and retry (%s)", o.debounce, o.maxDelay, o.startWait, o.retry)
	}
	seen := map[string]bool{}
	for _, s := range services {
		if !registry.ValidName(s) {
			return nil, fmt.Errorf("edge: service %q: %w", s, registry.ErrInvalidInstance)
		}
		if seen[s] {
			return nil, fmt.Errorf("edge: service %q listed twice", s)
		}
		seen[s] = true
	}
	return &Watcher{disc: disc, services: slices.Clone(services), o: o}, nil
}

// state is the latest event of every service, written by the forwarders.
type state struct {
	mu     sync.Mutex
	events map[string]sd.Event
	listed map[string]bool // services the registry has listed at least once
	at     time.Time       // first change not yet taken
	notify chan struct{}
}

func (st *state) put(svc string, ev sd.Event) {
	st.mu.Lock()
	st.events[svc] = ev
	// An error event of a service never listed is no listing: its empty
	// set is the instancer not knowing, not the registry saying "none".
	// One with instances carries a set the registry gave.
	if ev.Err == nil || len(ev.Instances) > 0 {
		st.listed[svc] = true
	}
	if st.at.IsZero() {
		st.at = time.Now()
	}
	st.mu.Unlock()
	select {
	case st.notify <- struct{}{}:
	default:
	}
}

// take returns the events, which services were ever listed, and the time
// of the oldest change since the last take.
func (st *state) take() (map[string]sd.Event, map[string]bool, time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make(map[string]sd.Event, len(st.events))
	for k, v := range st.events {
		out[k] = v
	}
	listed := make(map[string]bool, len(st.listed))
	for k, v := range st.listed {
		listed[k] = v
	}
	at := st.at
	st.at = time.Time{}
	return out, listed, at
}

// Run watches until ctx ends and calls apply with each new snapshot, never
// concurrently. A failed apply is logged and retried (WithRetry) until it
// succeeds or a newer snapshot replaces it. Run returns nil when ctx ends,
// or an error if a service cannot be watched at all.
func (w *Watcher) Run(ctx context.Context, apply func(context.Context, Snapshot) error) error {
	// The start wait runs from here, whatever setting up the watches
	// takes (etcd's Instancer waits up to 3 s for a first listing): the
	// first snapshot goes out at most startWait after Run starts, or once
	// the slowest watch is set up if that is later.
	deadline := time.Now().Add(w.o.startWait)
	level.Info(w.o.logger).Log("msg", "waiting for the registry to list every service before the first update",
		"services", strings.Join(w.services, ","), "at_most", w.o.startWait)
	st := &state{events: map[string]sd.Event{}, listed: map[string]bool{}, notify: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	type sub struct {
		ins sd.Instancer
		ch  chan sd.Event
	}
	var subs []sub
	defer func() {
		for _, s := range subs {
			s.ins.Deregister(s.ch) // the forwarder reads until ch closes
			close(s.ch)
			s.ins.Stop()
		}
		wg.Wait()
	}()
	// The watches are set up side by side: one per service in turn made
	// the start wait the sum of their setup times.
	var (
		setup  sync.WaitGroup
		subsMu sync.Mutex
		errs   = make([]error, len(w.services))
	)
	for i, svc := range w.services {
		setup.Add(1)
		go func() { // owned by Run: ends before setup.Wait below returns
			defer setup.Done()
			ins, err := w.disc.Instancer(ctx, svc)
			if err != nil {
				errs[i] = fmt.Errorf("edge: watch %s: %w", svc, err)
				return
			}
			ch := make(chan sd.Event)
			wg.Add(1)
			go func() { // owned by Run: ends when Run's deferred close(ch) runs
				defer wg.Done()
				for ev := range ch {
					st.put(svc, ev)
				}
			}()
			ins.Register(ch)
			subsMu.Lock()
			subs = append(subs, sub{ins, ch})
			subsMu.Unlock()
		}()
	}
	setup.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}

	var (
		version uint64
		pending bool      // a change not yet applied
		first   time.Time // when the first pending change arrived
		last    time.Time // when the latest one arrived
		started bool      // the first snapshot went out
		failed  bool      // the latest apply failed
		timer   = time.NewTimer(max(time.Until(deadline), 0))
		carried time.Time // Oldest of a snapshot whose apply failed
		failMsg string    // the failure last logged, with its version
		failVer uint64
		tries   int                 // failed attempts at the current set
		health  = map[string]bool{} // service → its listing failed in the last snapshot
	)
	defer timer.Stop()
	arm := func(at time.Time) {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(max(time.Until(at), 0))
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-st.notify:
			now := time.Now()
			if !pending {
				first = now
			}
			pending, last = true, now
			if !started {
				if st.heard() < len(w.services) {
					continue // the start-up deadline timer is armed
				}
				arm(now) // every service listed: go at once
				continue
			}
			at := last.Add(w.o.debounce)
			if cap := first.Add(w.o.maxDelay); cap.Before(at) {
				at = cap
			}
			arm(at)
		case <-timer.C:
			if !started && time.Now().Before(deadline) && st.heard() < len(w.services) {
				arm(deadline)
				continue
			}
			if !pending && !failed && started {
				continue
			}
			events, listed, at := st.take()
			if at.IsZero() || (!carried.IsZero() && carried.Before(at)) {
				at = carried
			}
			if pending || !started {
				version++ // a retry of the same set keeps its version
			}
			snap := w.snapshot(events, listed, version, at)
			w.logTransitions(snap, health)
			pending = false
			started = true
			if err := apply(ctx, snap); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// Once per set and error, not on every retry: a broken
				// template would fill the log every few seconds.
				if msg := failureShape(err.Error()); version != failVer || msg != failMsg {
					level.Error(w.o.logger).Log("msg", "apply failed; will retry (not logged again while the same set fails the same way)", "version", version, "retry_in", w.o.retry, "err", err)
					failVer, failMsg, tries = version, msg, 0
				} else {
					level.Debug(w.o.logger).Log("msg", "apply still failing", "version", version, "err", err)
				}
				tries++
				failed, carried = true, at
				arm(time.Now().Add(w.o.retry))
				continue
			}
			if failed && version == failVer {
				level.Info(w.o.logger).Log("msg", "apply succeeded after failing", "version", version, "failed_attempts", tries)
			}
			failed, carried, failVer, failMsg, tries = false, time.Time{}, 0, "", 0
		}
	}
}

// heard is how many services the registry has listed.
func (st *state) heard() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.listed)
}

// logTransitions logs, once per change rather than on every snapshot, a
// service whose listing starts failing (warn: what the proxy keeps
// serving) and one whose listing works again (info). failing holds each
// service's state as of the previous snapshot.
func (w *Watcher) logTransitions(snap Snapshot, failing map[string]bool) {
	for _, svc := range snap.Services {
		was, known := failing[svc.Name]
		now := svc.Err != nil
		failing[svc.Name] = now
		switch {
		case now && !was && svc.Unlisted:
			level.Warn(w.o.logger).Log("msg", "registry has not listed the service yet (unreachable?); the proxy keeps what it served before for it, nothing empty is applied",
				"service", svc.Name, "err", svc.Err)
		case now && !was:
			level.Warn(w.o.logger).Log("msg", "registry listing failing (unreachable?); the proxy keeps serving the last set listed",
				"service", svc.Name, "instances", len(svc.Instances), "err", svc.Err)
		case !now && was && known:
			level.Info(w.o.logger).Log("msg", "registry listing works again", "service", svc.Name, "instances", len(svc.Instances))
		}
	}
}

// snapshot builds a Snapshot from the latest events.
func (w *Watcher) snapshot(events map[string]sd.Event, listed map[string]bool, version uint64, at time.Time) Snapshot {
	snap := Snapshot{Version: version, Oldest: at}
	for _, name := range w.services {
		ev, ok := events[name]
		svc := Service{Name: name, Err: ev.Err, Unlisted: !listed[name]}
		if !ok {
			svc.Err = fmt.Errorf("edge: no listing of %s from the registry yet", name)
		}
		var bad []string
		for _, s := range ev.Instances {
			inst, err := registry.ParseInstance(s)
			if err == nil && inst.Name == "" {
				inst.Name = name // a bare host:port
			}
			if err != nil || inst.Name != name {
				bad = append(bad, s)
				continue
			}
			svc.Instances = append(svc.Instances, inst)
		}
		if len(bad) > 0 {
			level.Warn(w.o.logger).Log("msg", "instances skipped: unreadable or of another service", "service", name, "instances", strings.Join(bad, " "))
		}
		slices.SortFunc(svc.Instances, func(a, b registry.Instance) int { return strings.Compare(a.ID, b.ID) })
		snap.Services = append(snap.Services, svc)
	}
	return snap
}

// Summary renders a snapshot's sizes for logs: "order=2 user=3"; a
// service the registry has not listed yet is "user=?".
func Summary(s Snapshot) string {
	parts := make([]string, len(s.Services))
	for i, svc := range s.Services {
		if svc.Unlisted {
			parts[i] = svc.Name + "=?"
			continue
		}
		parts[i] = fmt.Sprintf("%s=%d", svc.Name, len(svc.Instances))
	}
	return strings.Join(parts, " ")
}

// MaxWeight is the largest instance weight a proxy is given; a larger one
// (the registry takes any non-negative int) counts as MaxWeight. It is
// 10,000 times the default weight, and it keeps Envoy's rules with room:
// an endpoint's load_balancing_weight is at most 2^32-1, and so is the
// sum of a locality's (4,294 instances at MaxWeight fit in one).
const MaxWeight = 1_000_000

// Weight is the weight a proxy gives inst: its weight,
// registry.DefaultWeight when unset, MaxWeight when above it. nginx and
// xDS both use it, so a weight means the same on either edge.
func Weight(inst registry.Instance) int {
	return min(inst.EffectiveWeight(), MaxWeight)
}

// failureShape is an apply error's message with every run of digits made
// one '#': the same failure told twice differs in its timestamps and
// process IDs (nginx -t: "2026/12/06 07:01:02 [emerg] 4242#4242: …"), and
// was logged on every retry (report j49b).
func failureShape(msg string) string {
	var b strings.Builder
	digits := false
	for _, r := range msg {
		if r >= '0' && r <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteRune(r)
	}
	return b.String()
}
