package etcd

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// Reasons a watch ends other than an etcd error; each leads to a re-list.
var (
	errConnChanged    = errors.New("connection to etcd lost or re-established")
	errDisconnected   = errors.New("connection to etcd lost")
	errClusterChanged = errors.New("etcd cluster ID changed")
	errRevisionBack   = errors.New("etcd revision went backwards (restored from a snapshot?)")
	errWatchClosed    = errors.New("watch channel closed")
)

// Instancer is a go-kit sd.Instancer of one service, kept current from
// etcd. Events carry registry.Instance.String values; on errors an event
// carries the last good set together with the error.
//
// One goroutine owned by the Instancer does all the work, over the
// Registry's one etcd client and told of connection changes by the
// Registry's one connection monitor; Stop ends it.
type Instancer struct {
	cache   *registry.Cache
	cfg     config
	service string
	prefix  string
	client  *lazyClient
	conn    *connMonitor
	logger  log.Logger
	onStop  func(*Instancer)

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once

	// Owned by the run goroutine.
	cli       *clientv3.Client  // the Registry's, once list has it
	set       map[string]string // instance ID (setKey) → Instance.String()
	skipped   map[string]error  // keys under the prefix not served, and why
	rev       int64             // revision the set is current at
	clusterID uint64
	listed    bool
	lister    lister
	lost      bool      // reads failed since the last listing: the next one starts a hold
	holdUntil time.Time // until then an empty set is not published (WithReconnectHold)
	held      bool      // the cache shows a held set, not in.set
	outage    *registry.OutageLog
	// explain adds to a failed listing why the client has no connection
	// (Registry.explain: a TLS mistake, a refused port), when it can.
	explain func(*clientv3.Client, error) error
}

var _ sd.Instancer = (*Instancer)(nil)

// newInstancer starts an instancer and waits for its first listing until
// the initial wait or ctx's deadline, whichever is sooner.
// instancerLogger is the config's logger with the service, and for an
// instancer of a failover prefix that prefix too: every region's reader
// logs about the same service (report j48d).
func instancerLogger(cfg config, service, prefix string) log.Logger {
	l := log.With(cfg.logger, "service", service)
	if prefix != servicePrefix(cfg.prefix, service) {
		l = log.With(l, "prefix", prefix)
	}
	return l
}

func newInstancer(ctx context.Context, cfg config, client *lazyClient, conn *connMonitor, service, prefix string, onStop func(*Instancer), explain func(*clientv3.Client, error) error) *Instancer {
	in := &Instancer{
		explain: explain,
		cache:   registry.NewCache(),
		cfg:     cfg,
		service: service,
		prefix:  prefix,
		client:  client,
		conn:    conn,
		logger:  instancerLogger(cfg, service, prefix),
		onStop:  onStop,
		done:    make(chan struct{}),
		set:     map[string]string{},
		lister:  lister{testHookChunk: cfg.testHookListChunk},
	}
	in.outage = registry.NewOutageLog(in.logger, "etcd")
	deadline := time.Now().Add(cfg.initialWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	runCtx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	// The first listing ends at the deadline or when ctx ends, so the
	// constructor returns with its outcome (set or error) already
	// published; the timer is only a backstop.
	firstCtx, cancelFirst := context.WithDeadline(runCtx, deadline)
	defer context.AfterFunc(ctx, cancelFirst)()
	first := make(chan struct{})
	go in.run(runCtx, firstCtx, cancelFirst, first)

	t := time.NewTimer(time.Until(deadline) + time.Second)
	defer t.Stop()
	select {
	case <-first:
	case <-t.C:
	}
	return in
}

// Register implements sd.Instancer.
func (in *Instancer) Register(ch chan<- sd.Event) { in.cache.Register(ch) }

// Deregister implements sd.Instancer.
func (in *Instancer) Deregister(ch chan<- sd.Event) { in.cache.Deregister(ch) }

// RegisterDelta implements registry.DeltaInstancer: a watch event costs
// subscribers the size of the change, not of the set.
func (in *Instancer) RegisterDelta(ch chan<- registry.Delta) { in.cache.RegisterDelta(ch) }

// DeregisterDelta implements registry.DeltaInstancer.
func (in *Instancer) DeregisterDelta(ch chan<- registry.Delta) { in.cache.DeregisterDelta(ch) }

// State returns the current event: the set and the error, if any.
func (in *Instancer) State() sd.Event { return in.cache.State() }

// Stop ends the watch and the Instancer's goroutine. The client is the
// Registry's and stays open. Subscribers keep the last state. It is
// idempotent.
func (in *Instancer) Stop() {
	in.stopOnce.Do(func() {
		in.cancel()
		// A subscriber may be calling Stop from its handler while run
		// waits to send it a change: end that send, or done never comes.
		in.cache.Stop()
		<-in.done
		if in.onStop != nil {
			in.onStop(in)
		}
	})
}

// run lists and watches until ctx ends. The first listing attempt uses
// firstCtx (bounded by the constructor's deadline); first is closed after it.
func (in *Instancer) run(ctx, firstCtx context.Context, cancelFirst context.CancelFunc, first chan struct{}) {
	defer close(in.done)
	connChanged, unsubscribe := in.conn.subscribe()
	defer unsubscribe()

	bo := backoff.New(in.cfg.backoffMin, in.cfg.backoffMax)
	// backRelisted: a watch ended by the connection's return was followed
	// by an immediate re-list since the last watch that lasted.
	backRelisted := false
	for {
		// A reconnect signalled before this listing is covered by it.
		select {
		case <-connChanged:
		default:
		}
		var err error
		if first != nil {
			err = in.list(firstCtx)
			cancelFirst()
		} else {
			lctx, cancel := context.WithTimeout(ctx, in.cfg.requestTimeout)
			err = in.list(lctx)
			cancel()
		}
		if err != nil && ctx.Err() == nil {
			in.fail(err)
		}
		if first != nil {
			// Only now: the constructor returns with the outcome of the
			// first listing, set or error, already published.
			close(first)
			first = nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !backoff.Sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		if hook := in.cfg.testHookBeforeWatch; hook != nil {
			hook()
		}
		started := time.Now()
		reason := in.watch(ctx, connChanged)
		if ctx.Err() != nil {
			return
		}
		level.Info(in.logger).Log("msg", "watch ended, re-listing", "rev", in.rev, "reason", reason)
		in.cfg.observer.WatchRestarted(in.service, reason)
		back := false
		if errors.Is(reason, errConnChanged) {
			if in.cli.ActiveConnection().GetState() != connectivity.Ready {
				// The client would resume the watch by itself once etcd is
				// back, but until then subscribers should know the set may
				// be stale.
				in.fail(errDisconnected)
			} else {
				back = true
			}
		}
		switch {
		case errors.Is(reason, rpctypes.ErrCompacted):
			// One-off by nature: the next watch starts at a fresh revision.
		case time.Since(started) >= time.Second:
			bo.Reset()
			backRelisted = false
		case back && !backRelisted:
			// The connection is back: often the very recovery a listing
			// that waited for etcd was answered in, signalled while it
			// waited. Not a failure: re-list now, not after the backoff
			// the outage grew (the instancer saw nothing meanwhile). Once
			// per watch that lasted: a flapping connection backs off.
			backRelisted = true
		default:
			// A watch that fails at once would otherwise spin list/watch.
			if !backoff.Sleep(ctx, bo.Next()) {
				return
			}
		}
	}
}

// list reads the whole prefix and makes it the set, publishing the
// difference (the cache drops an unchanged set).
func (in *Instancer) list(ctx context.Context) error {
	if in.cli == nil {
		// With credentials the client may still be authenticating.
		cli, err := in.client.get(ctx)
		if err != nil {
			return fmt.Errorf("etcd: list %s: %w", in.prefix, err)
		}
		in.cli = cli
	}
	// WithRequireLeader: a member without a leader (cut off from the
	// others, or mid-election) refuses at once instead of holding the read
	// for the whole request timeout, and the client asks the next member.
	//
	// The records are gathered in a slice and the set made at its final
	// size: the count is known only at the end of a stream, and a map
	// grown from empty (a first listing) rehashed itself all the way up.
	type member struct{ key, s string }
	members := make([]member, 0, len(in.set))
	skipped := map[string]error{}
	h, err := in.lister.list(clientv3.WithRequireLeader(ctx), in.cli.KV, in.prefix,
		func() { members = members[:0]; clear(skipped) },
		func(kvs []*mvccpb.KeyValue) {
			for i, d := range in.decodeAll(kvs) {
				if kv := kvs[i]; d.err != nil {
					skipped[string(kv.Key)] = d.err
				} else {
					members = append(members, member{setKey(kv.Key[len(in.prefix):], d.s), d.s})
				}
			}
		})
	if err != nil {
		return fmt.Errorf("etcd: list %s: %w", in.prefix, in.explain(in.cli, err))
	}
	next := make(map[string]string, len(members))
	for _, m := range members {
		next[m.key] = m.s
	}
	if in.listed && h.ClusterId != in.clusterID {
		level.Warn(in.logger).Log("msg", "etcd cluster ID changed; set rebuilt from a full listing",
			"old", fmt.Sprintf("%x", in.clusterID), "new", fmt.Sprintf("%x", h.ClusterId))
	} else if in.listed && h.Revision < in.rev {
		level.Warn(in.logger).Log("msg", "etcd revision went backwards; set rebuilt from a full listing",
			"old", in.rev, "new", h.Revision)
	}
	in.skipped = skipped
	in.reportSkipped()
	if in.listed {
		if n := diffCount(in.set, next); n > 0 {
			level.Info(in.logger).Log("msg", "re-listing found changes", "changed", n, "rev", h.Revision)
		}
	}
	in.set, in.rev, in.clusterID, in.listed = next, h.Revision, h.ClusterId, true
	in.outage.Recovered("instances", len(next))
	if in.lost {
		in.lost = false
		in.holdUntil = time.Now().Add(in.cfg.holdAfterReconnect())
	}
	in.publish(nil)
	return nil
}

// watch applies changes from rev+1 on until the watch ends, and returns
// why it ended (nil when ctx ended).
func (in *Instancer) watch(ctx context.Context, connChanged <-chan struct{}) error {
	// WithRequireLeader: a member cut off from the leader would serve a
	// silently stale stream; with it the watch is cancelled and we re-list
	// from a member that has one.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	// Helper goroutines end once wctx is cancelled; wait for them.
	var helpers sync.WaitGroup
	defer helpers.Wait()
	defer cancel()
	var wch clientv3.WatchChan
	pending := watchAsync(wctx, in.cli, in.prefix, clientv3.WithPrefix(), clientv3.WithRev(in.rev+1), clientv3.WithProgressNotify())
	defer func() {
		cancel()
		if pending != nil {
			<-pending
		}
	}()
	tick := time.NewTicker(in.cfg.progressInterval)
	defer tick.Stop()
	var holdEnd <-chan time.Time
	if d := time.Until(in.holdUntil); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		holdEnd = t.C
	}
	var progressBusy atomic.Bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-holdEnd:
			holdEnd = nil
			if in.held {
				level.Warn(in.logger).Log("msg", "no record came back within the reconnect hold; publishing the empty set")
				in.publish(nil)
			}
		case <-connChanged:
			return errConnChanged
		case wch = <-pending:
			pending = nil
		case <-tick.C:
			// The progress report carries a header; a new cluster ID or a
			// lower revision in it means etcd was replaced under us. Like
			// Watch, the request blocks while the stream is down, so it runs
			// aside; a failed one is simply tried again at the next tick.
			if wch == nil || !progressBusy.CompareAndSwap(false, true) {
				continue
			}
			helpers.Add(1)
			go func() {
				defer helpers.Done()
				defer progressBusy.Store(false)
				pctx, pcancel := context.WithTimeout(wctx, in.cfg.requestTimeout)
				defer pcancel()
				in.cli.RequestProgress(pctx)
			}()
		case wr, ok := <-wch:
			if !ok {
				return errWatchClosed
			}
			if wr.CompactRevision != 0 {
				return fmt.Errorf("%w (at %d, we were at %d)", rpctypes.ErrCompacted, wr.CompactRevision, in.rev)
			}
			if err := wr.Err(); err != nil {
				return err
			}
			if h := wr.Header; h.ClusterId != 0 && h.ClusterId != in.clusterID {
				return errClusterChanged
			} else if h.Revision != 0 && h.Revision < in.rev {
				return errRevisionBack
			}
			var added, removed []string
			for _, ev := range wr.Events {
				// Net the batch: a value put and replaced (or deleted) within
				// one response never reaches subscribers.
				a, r := in.apply(ev)
				if r != "" {
					if i := slices.Index(added, r); i >= 0 {
						added = slices.Delete(added, i, i+1)
					} else {
						removed = append(removed, r)
					}
				}
				if a != "" {
					if i := slices.Index(removed, a); i >= 0 {
						removed = slices.Delete(removed, i, i+1)
					} else {
						added = append(added, a)
					}
				}
			}
			if wr.Header.Revision > in.rev {
				in.rev = wr.Header.Revision
			}
			switch {
			case len(added) == 0 && len(removed) == 0:
			case in.held || len(in.set) == 0:
				// The whole set, so that publish can start or end a hold.
				in.publish(nil)
			default:
				// Only the change travels: O(events), not O(set).
				in.cache.Apply(added, removed, nil)
				in.cfg.observer.Instances(in.service, len(in.set))
			}
		}
	}
}

// apply applies one event to the set in O(1) and returns the instance
// string it added and the one it removed ("" for none).
func (in *Instancer) apply(ev *clientv3.Event) (added, removed string) {
	key := string(ev.Kv.Key)
	id := key[len(in.prefix):]
	old, had := in.set[id]
	if had {
		removed = old
	}
	_, wasSkipped := in.skipped[key]
	delete(in.skipped, key)
	if ev.Type == mvccpb.PUT {
		s, err := in.decode(ev.Kv)
		if err == nil {
			if had {
				delete(in.set, id) // its key may be the old string's memory
			}
			in.set[setKey(ev.Kv.Key[len(in.prefix):], s)] = s
			if wasSkipped {
				in.cfg.observer.Skipped(in.service, len(in.skipped))
			}
			if had && old == s {
				return "", ""
			}
			return s, removed
		}
		// An unusable overwrite withdraws what was there. One line per
		// such write: the rate is the writer's, not once per re-list.
		in.skipped[key] = err
		level.Warn(in.logger).Log("msg", "skipping record", "key", key, "err", err)
		in.cfg.observer.Skipped(in.service, len(in.skipped))
	} else if wasSkipped {
		in.cfg.observer.Skipped(in.service, len(in.skipped))
	}
	delete(in.set, id)
	return "", removed
}

// setKey is the set's key for a record whose key ends in id, and whose
// instance string s decode checked: the instance ID, taken from inside s
// when s carries it unescaped (it does for the IDs registrars make), so
// the key holds no memory of its own — at 10k instances, most of a
// megabyte.
func setKey(id []byte, s string) string {
	for _, sep := range []string{"?id=", "&id="} {
		if i := strings.Index(s, sep); i >= 0 {
			v := s[i+len(sep):]
			if len(v) >= len(id) && v[:len(id)] == string(id) && (len(v) == len(id) || v[len(id)] == '&') {
				return v[:len(id)]
			}
		}
	}
	return string(id)
}

// errNoLease marks a record without a lease: registrars always attach
// one, so such a record was written by hand or by another tool, would
// never expire, and may point anywhere. It is never routed to; the
// instance's own registrar replaces it.
var errNoLease = errors.New("record has no lease (not written by a registrar; it would never expire)")

// decode turns a stored record into the instance string, or says why it
// is not served.
func (in *Instancer) decode(kv *mvccpb.KeyValue) (string, error) {
	// The key compared in place: a string of it would be one more
	// allocation per record of a full sync.
	id := kv.Key
	if len(id) >= len(in.prefix) && string(id[:len(in.prefix)]) == in.prefix {
		id = id[len(in.prefix):]
	}
	// Only the string is kept: RecordString builds no Instance for it.
	instID, name, str, err := registry.RecordString(kv.Value)
	switch {
	case err != nil:
		return "", err
	case instID != string(id) || name != in.service:
		return "", fmt.Errorf("record for %s/%s does not match its key", name, instID)
	case kv.Lease == 0:
		return "", errNoLease
	}
	return str, nil
}

// decoded is one record's outcome: its instance string, or why it is
// not served.
type decoded struct {
	s   string
	err error
}

// minPerWorker is the fewest records worth handing to another goroutine.
const minPerWorker = 64

// decodeAll decodes kvs spread over the cores: a full listing is one
// decode and validation per record, the one part of a sync that is
// Warren's own (go-kit hands on the raw values), and records are
// independent. The goroutines end before it returns.
func (in *Instancer) decodeAll(kvs []*mvccpb.KeyValue) []decoded {
	out := make([]decoded, len(kvs))
	part := func(lo, hi int) {
		for i := lo; i < hi; i++ {
			out[i].s, out[i].err = in.decode(kvs[i])
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(kvs)/minPerWorker)
	if workers <= 1 {
		part(0, len(kvs))
		return out
	}
	per := (len(kvs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := per; lo < len(kvs); lo += per {
		wg.Go(func() { part(lo, min(lo+per, len(kvs))) })
	}
	part(0, per)
	wg.Wait()
	return out
}

// reportSkipped logs the records a listing skipped in one line — a
// prefix full of junk costs one line per re-list, not one per key — and
// reports their count to the observer (a metric).
func (in *Instancer) reportSkipped() {
	in.cfg.observer.Skipped(in.service, len(in.skipped))
	if len(in.skipped) == 0 {
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

// ErrHeldAfterReconnect is the error beside a set the instancer keeps
// although etcd no longer holds any of its records: they went within the
// reconnect hold after an outage (see WithReconnectHold).
var ErrHeldAfterReconnect = errors.New("etcd: every record of the service went right after an outage; keeping the last set while registrars re-register")

// publish sends the current set, with err if reads are failing. Within
// the reconnect hold an empty set is not sent: the last non-empty one
// stays, with ErrHeldAfterReconnect.
func (in *Instancer) publish(err error) {
	insts := make([]string, 0, len(in.set))
	for _, s := range in.set {
		insts = append(insts, s)
	}
	held := false
	if len(insts) == 0 && time.Now().Before(in.holdUntil) {
		if prev := in.cache.State(); len(prev.Instances) > 0 {
			if !in.held {
				level.Warn(in.logger).Log("msg", "every record went right after etcd came back; keeping the last set while registrars re-register",
					"instances", len(prev.Instances), "until", in.holdUntil.Format(time.RFC3339Nano))
			}
			insts, held = prev.Instances, true
			err = errors.Join(err, ErrHeldAfterReconnect)
		}
	}
	in.held = held
	in.cache.Update(sd.Event{Instances: insts, Err: err})
	in.cfg.observer.Instances(in.service, len(in.set))
}

// fail keeps serving the last good set, now with the error beside it.
func (in *Instancer) fail(err error) {
	in.lost = true
	in.outage.Failed(err, "instances", len(in.set))
	in.publish(err)
}

func diffCount(a, b map[string]string) int {
	n := 0
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			n++
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			n++
		}
	}
	return n
}
