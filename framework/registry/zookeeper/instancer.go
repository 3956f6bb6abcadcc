package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/zk"
)

// errNotEphemeral marks a persistent record: registrars always write
// ephemeral znodes, so it was written by hand or by another tool, would
// never go away with a dead process, and is never routed to.
var errNotEphemeral = errors.New("record is not an ephemeral znode (not written by a registrar; it would never expire)")

// Instancer is a go-kit sd.Instancer of one service, kept current from
// ZooKeeper watches. Events carry registry.Instance.String values; while
// ZooKeeper cannot be read an event carries the last good set with the
// error.
//
// ZooKeeper watches fire once. The instancer arms a child watch on the
// service's znode and a data watch on each instance's znode, each armed by
// the very read that returns the current state (ChildrenW, GetW), so a
// change between a watch firing and the re-read is in the re-read: every
// fired watch leads to a read that re-arms it. A watch that ends without
// firing (session expired, connection closed) is re-armed the same way,
// and a new session or a reconnect re-reads everything.
//
// One goroutine owned by the Instancer applies every change, over the
// Registry's one session; watch channels are forwarded to it by one short
// goroutine each, which ends when its watch fires or the Instancer stops.
type Instancer struct {
	cache   *registry.Cache
	r       *Registry
	service string
	dir     string
	logger  log.Logger

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
	fwd      sync.WaitGroup

	events chan watchEvent

	// Owned by the run goroutine.
	children  map[string]bool   // child names under dir as last listed
	set       map[string]string // child → Instance.String()
	skipped   map[string]error  // children not served, and why
	dataWatch map[string]bool   // children with an armed data watch
	dirWatch  bool              // a child (or exists) watch on dir is armed
	outage    *registry.OutageLog
}

var (
	_ sd.Instancer            = (*Instancer)(nil)
	_ registry.DeltaInstancer = (*Instancer)(nil)
)

// watchEvent is a fired (or ended) watch: on dir when child is "".
type watchEvent struct {
	child string
	ev    zk.Event
}

func newInstancer(ctx context.Context, r *Registry, service string) *Instancer {
	in := &Instancer{
		cache:     registry.NewCache(),
		r:         r,
		service:   service,
		dir:       r.servicePath(service),
		logger:    log.With(r.cfg.logger, "service", service),
		outage:    registry.NewOutageLog(log.With(r.cfg.logger, "service", service), "ZooKeeper"),
		done:      make(chan struct{}),
		events:    make(chan watchEvent, 16),
		children:  map[string]bool{},
		set:       map[string]string{},
		skipped:   map[string]error{},
		dataWatch: map[string]bool{},
	}
	deadline := time.Now().Add(r.cfg.initialWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	runCtx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	first := make(chan struct{})
	go in.run(runCtx, first)
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-first:
	case <-t.C:
	case <-ctx.Done():
	}
	return in
}

// Register implements sd.Instancer.
func (in *Instancer) Register(ch chan<- sd.Event) { in.cache.Register(ch) }

// Deregister implements sd.Instancer.
func (in *Instancer) Deregister(ch chan<- sd.Event) { in.cache.Deregister(ch) }

// RegisterDelta implements registry.DeltaInstancer: the endpointer and
// the snapshot layer take each change instead of the whole sorted set
// (the instances are the String of records already validated).
func (in *Instancer) RegisterDelta(ch chan<- registry.Delta) { in.cache.RegisterDelta(ch) }

// DeregisterDelta implements registry.DeltaInstancer.
func (in *Instancer) DeregisterDelta(ch chan<- registry.Delta) { in.cache.DeregisterDelta(ch) }

// State returns the current event: the set and the error, if any.
func (in *Instancer) State() sd.Event { return in.cache.State() }

// Stop ends the Instancer's goroutines; the session is the Registry's and
// stays open. Subscribers keep the last state. Idempotent.
func (in *Instancer) Stop() {
	in.stopOnce.Do(func() {
		in.cancel()
		// A subscriber may be calling Stop from its handler while a
		// change waits to be sent to it: end that send, or done (and
		// the forwarders) never come.
		in.cache.Stop()
		<-in.done
		in.fwd.Wait()
		in.r.forget(in)
	})
}

// run reads and watches until ctx ends; first is closed after the first
// full listing succeeded.
func (in *Instancer) run(ctx context.Context, first chan struct{}) {
	defer close(in.done)
	sig, unsubscribe := in.r.sess.subscribe()
	defer unsubscribe()
	bo := backoff.New(in.r.cfg.backoffMin, in.r.cfg.backoffMax)
	lastSession, _, _ := in.r.sess.state()
	// pending: reads still to do. relist re-reads the children (and the
	// data of every child without an armed watch); dirty children are
	// re-read one by one.
	relist := true
	dirty := map[string]bool{}
	var retry <-chan time.Time
	for {
		if relist || len(dirty) > 0 {
			err := in.refresh(ctx, relist, dirty)
			if err == nil {
				relist = false
				clear(dirty)
				bo.Reset()
				retry = nil
			} else if ctx.Err() == nil {
				in.fail(err)
				retry = time.After(bo.Next())
			}
			if first != nil {
				// The constructor returns with the outcome of the first
				// listing, set or error, already published.
				close(first)
				first = nil
			}
		}
		select {
		case <-ctx.Done():
			return
		case we := <-in.events:
			if we.child == "" {
				in.dirWatch = false
				relist = true
			} else {
				in.dataWatch[we.child] = false
				dirty[we.child] = true
			}
			if we.ev.Type == zk.EventNotWatching {
				relist = true
			}
		case <-sig:
			id, connected, _ := in.r.sess.state()
			if connected {
				if id != lastSession {
					level.Info(in.logger).Log("msg", "new ZooKeeper session, re-listing")
					in.r.cfg.observer.WatchRestarted(in.service, errors.New("new ZooKeeper session"))
					lastSession = id
				}
				// Reconnected: the library re-set our watches; one read
				// proves nothing was missed meanwhile.
				relist = true
			} else if len(in.set) > 0 || in.r.sess.lost() {
				in.fail(errors.New("zookeeper: connection lost; serving the last known set"))
			}
		case <-retry:
			retry = nil
			if !relist && len(dirty) == 0 {
				relist = true
			}
		}
	}
}

// refresh re-reads what is pending: the children (relist) and the data of
// dirty children. A child read that fails fails the whole refresh, which
// is retried; the set is published once, at the end.
func (in *Instancer) refresh(ctx context.Context, relist bool, dirty map[string]bool) error {
	conn := in.r.conn
	changed := false
	if relist {
		kids, err := in.listChildren(ctx)
		if err != nil {
			return err
		}
		next := make(map[string]bool, len(kids))
		for _, k := range kids {
			next[k] = true
		}
		for k := range in.children {
			if !next[k] {
				changed = in.drop(k) || changed
			}
		}
		for k := range next {
			if !in.dataWatch[k] || !in.children[k] {
				dirty[k] = true
			}
		}
		in.children = next
	}
	for k := range dirty {
		if !in.children[k] {
			changed = in.drop(k) || changed
			continue
		}
		p := path.Join(in.dir, k)
		var (
			data []byte
			stat *zk.Stat
			ech  <-chan zk.Event
			err  error
		)
		if in.dataWatch[k] {
			data, stat, err = conn.GetContext(ctx, p)
		} else {
			data, stat, ech, err = conn.GetWContext(ctx, p)
		}
		if errors.Is(err, zk.ErrNoNode) {
			// Deleted since the listing; the child watch fires for it.
			delete(in.children, k)
			changed = in.drop(k) || changed
			continue
		}
		if err != nil {
			return fmt.Errorf("zookeeper: read %s: %w", p, err)
		}
		if ech != nil {
			in.dataWatch[k] = true
			in.forward(k, ech)
		}
		changed = in.apply(k, data, stat) || changed
	}
	failing := in.outage.Failing()
	in.outage.Recovered("instances", len(in.set))
	if changed || relist || failing {
		// After a failure the subscribers hold the set with the error:
		// a read that changed nothing still clears it.
		in.reportSkipped(relist)
		in.publish(nil)
	}
	return nil
}

// listChildren reads the children of the service's znode and arms the
// child watch (or, while the znode does not exist yet, an exists watch
// that fires when the first instance creates it).
func (in *Instancer) listChildren(ctx context.Context) ([]string, error) {
	conn := in.r.conn
	if in.dirWatch {
		// A watch on dir is armed already (a re-list after a reconnect):
		// read without arming a second one.
		kids, _, err := conn.ChildrenContext(ctx, in.dir)
		if errors.Is(err, zk.ErrNoNode) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("zookeeper: list %s: %w", in.dir, err)
		}
		return kids, nil
	}
	for range 3 {
		kids, _, ech, err := conn.ChildrenWContext(ctx, in.dir)
		if err == nil {
			in.armDir(ech)
			return kids, nil
		}
		if !errors.Is(err, zk.ErrNoNode) {
			return nil, fmt.Errorf("zookeeper: list %s: %w", in.dir, err)
		}
		exists, _, ech, err := conn.ExistsWContext(ctx, in.dir)
		if err != nil {
			return nil, fmt.Errorf("zookeeper: watch %s: %w", in.dir, err)
		}
		if !exists {
			in.armDir(ech)
			return nil, nil
		}
		// Created between the two reads (its exists watch fires later,
		// which only costs a re-list): list again.
	}
	return nil, fmt.Errorf("zookeeper: %s keeps appearing and disappearing", in.dir)
}

// armDir forwards the watch on dir just armed.
func (in *Instancer) armDir(ech <-chan zk.Event) {
	in.dirWatch = true
	in.forward("", ech)
}

// forward hands one watch's event to the run goroutine.
func (in *Instancer) forward(child string, ech <-chan zk.Event) {
	in.fwd.Add(1)
	go func() {
		defer in.fwd.Done()
		select {
		case ev, ok := <-ech:
			if !ok {
				ev = zk.Event{Type: zk.EventNotWatching, Err: zk.ErrClosing}
			}
			select {
			case in.events <- watchEvent{child: child, ev: ev}:
			case <-in.done:
			}
		case <-in.done:
		}
	}()
}

// apply records one child's data and reports whether the set changed.
func (in *Instancer) apply(child string, data []byte, stat *zk.Stat) bool {
	old, had := in.set[child]
	_, wasSkipped := in.skipped[child]
	delete(in.skipped, child)
	s, err := in.decode(child, data, stat)
	if err != nil {
		in.skipped[child] = err
		if !wasSkipped {
			level.Warn(in.logger).Log("msg", "skipping record", "znode", path.Join(in.dir, child), "err", err)
		}
		delete(in.set, child)
		return had
	}
	in.set[child] = s
	return !had || old != s
}

// drop forgets a child that is gone and reports whether the set changed.
func (in *Instancer) drop(child string) bool {
	_, had := in.set[child]
	delete(in.set, child)
	delete(in.skipped, child)
	delete(in.dataWatch, child) // a deleted znode's data watch fires and ends
	return had
}

// decode turns a stored record into the instance string, or says why it
// is not served.
// RecordString, as in the etcd instancer: only the string is kept.
func (in *Instancer) decode(child string, data []byte, stat *zk.Stat) (string, error) {
	id, name, str, err := registry.RecordString(data)
	switch {
	case err != nil:
		return "", err
	case id != child || name != in.service:
		return "", fmt.Errorf("record for %s/%s does not match its znode", name, id)
	case stat.EphemeralOwner == 0:
		return "", errNotEphemeral
	}
	return str, nil
}

// reportSkipped reports the count of skipped records to the observer and,
// after a full listing, logs them in one line.
func (in *Instancer) reportSkipped(full bool) {
	in.r.cfg.observer.Skipped(in.service, len(in.skipped))
	if !full || len(in.skipped) == 0 {
		return
	}
	keys := make([]string, 0, len(in.skipped))
	for k := range in.skipped {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var examples []string
	for _, k := range keys[:min(3, len(keys))] {
		examples = append(examples, fmt.Sprintf("%s: %v", k, in.skipped[k]))
	}
	level.Warn(in.logger).Log("msg", "skipped records that are not usable instances", "skipped", len(keys), "examples", strings.Join(examples, "; "))
}

// publish sends the current set, with err if reads are failing.
func (in *Instancer) publish(err error) {
	insts := make([]string, 0, len(in.set))
	for _, s := range in.set {
		insts = append(insts, s)
	}
	in.cache.Update(sd.Event{Instances: insts, Err: err})
	in.r.cfg.observer.Instances(in.service, len(insts))
}

// fail keeps serving the last good set, now with the error beside it.
func (in *Instancer) fail(err error) {
	err = in.r.withConnectError(err)
	in.outage.Failed(err, "instances", len(in.set))
	in.publish(err)
}
