package consul

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"github.com/hashicorp/consul/api"
	"golang.org/x/time/rate"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// Instancer is a go-kit sd.Instancer over one Consul service. A goroutine
// runs blocking health queries for the service's passing instances and
// publishes each new set to the embedded Cache. Subscribers registered with
// Register get the current set at once and every change after; like
// go-kit's instancers, sends are synchronous, so a subscriber must keep
// reading until it has called Deregister.
//
// When a query fails, subscribers get an event with the error and the last
// good set (empty if there never was one); the instancer retries with
// jittered backoff and publishes a clean event once the agent answers again.
// Nothing closes the channels; Stop ends the goroutine.
type Instancer struct {
	*registry.Cache

	r       *Registry
	service string
	cfg     instancerConfig

	cancel context.CancelFunc
	done   chan struct{}
	first  chan struct{} // closed by loop once the first event is out
	once   sync.Once
}

var _ sd.Instancer = (*Instancer)(nil)

// NewInstancer starts discovering service and returns once the agent has
// answered the first query, so a subscriber registered right after gets the
// set at once (go-kit's sd.NewEndpointer serves its first call from it, and
// go-kit's sd/consul queries before returning too: report j57a F5). The
// wait is bounded by WithInitialWait (default 3 s) and by ctx: when the
// agent has not answered by then it returns anyway, with no error, and the
// first event (the set, or the error when the agent cannot be reached)
// follows when the query ends. An agent that refuses at once gives an error
// event at once. Otherwise ctx is only checked: the instancer lives until
// Stop or the Registry's Close.
func (r *Registry) NewInstancer(ctx context.Context, service string, opts ...InstancerOption) (*Instancer, error) {
	return r.newInstancer(ctx, time.Now().Add(r.cfg.initialWait), service, opts...)
}

// newInstancer is NewInstancer waiting until deadline at most: Instancer
// gives a failover's instancers one deadline, so an agent that does not
// answer costs one initial wait, not one per datacenter.
func (r *Registry) newInstancer(ctx context.Context, deadline time.Time, service string, opts ...InstancerOption) (*Instancer, error) {
	in, err := r.startInstancer(ctx, service, opts...)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-in.first:
	case <-t.C:
	case <-ctx.Done():
	case <-in.done: // Close ended it
	}
	return in, nil
}

// startInstancer checks the arguments and starts the query goroutine.
func (r *Registry) startInstancer(ctx context.Context, service string, opts ...InstancerOption) (*Instancer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("consul: instancer %s: %w", service, err)
	}
	if !discoverableName(service) {
		return nil, fmt.Errorf("consul: instancer: %w: service name %q (want a Warren name or a dotted go-micro one)", registry.ErrInvalidInstance, service)
	}
	cfg := instancerConfig{datacenter: r.cfg.datacenter, allowStale: r.cfg.allowStale}
	for _, o := range opts {
		o(&cfg)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("consul registry: %w", ErrClosed)
	}
	ictx, cancel := context.WithCancel(r.ctx)
	in := &Instancer{
		Cache:   registry.NewCache(),
		r:       r,
		service: service,
		cfg:     cfg,
		cancel:  cancel,
		done:    make(chan struct{}),
		first:   make(chan struct{}),
	}
	r.instancers[in] = struct{}{}
	r.wg.Add(1)
	go in.loop(ictx)
	return in, nil
}

// Stop ends the query goroutine and waits for it, cancelling any query in
// flight. It is idempotent. Subscribers keep the last event they got.
func (in *Instancer) Stop() {
	in.once.Do(func() {
		in.cancel()
		// A subscriber may be calling Stop from its handler while loop
		// waits to send it a change: end that send, or done never comes.
		in.Cache.Stop()
		<-in.done
		in.r.mu.Lock()
		delete(in.r.instancers, in)
		in.r.mu.Unlock()
	})
}

// loop is the instancer's only goroutine. Every query has a deadline, and
// every query except the one right after a change is rate-limited, so no
// answer from the agent can make it spin.
//
// Consul's blocking-query guidance asks clients to rate-limit because an
// answer is no proof of a change: the wait ran out, the index went
// backwards (reset to 0, a non-blocking read) or was 0, or the query
// failed. Each of those takes a token from the limiter before the next
// query. An answer with a higher index than the one we waited on is a
// write Consul committed for this service; the query after it is how the
// next change arrives, so it goes at once. Limiting it too would delay
// every change that follows another within one token interval (under
// churn, a rolling deploy, by up to that whole interval).
func (in *Instancer) loop(ctx context.Context) {
	defer in.r.wg.Done()
	defer close(in.done)

	r := in.r
	limiter := rate.NewLimiter(rate.Limit(r.cfg.queryRate), r.cfg.queryBurst)
	bo := backoff.New(r.cfg.backoffMin, r.cfg.backoffMax)
	logger := log.With(r.logger, "service", in.service)
	if in.cfg.datacenter != r.cfg.datacenter {
		// A failover datacenter's reader: every datacenter's reader logs
		// about the same service (report j48d).
		logger = log.With(logger, "datacenter", in.cfg.datacenter)
	}
	outage := registry.NewOutageLog(logger, "Consul")
	first := in.first
	published := func() { // the constructor may return now
		if first != nil {
			close(first)
			first = nil
		}
	}
	back := r.backs.join(in.cfg.datacenter) // the wait for the agent (wake.go)
	defer back.leave()
	var (
		index    uint64
		last     listing // the set published last
		afterErr bool
		// After an outage the agent may answer with a set lacking instances
		// that have not registered with it again yet: held keeps them, each
		// for one re-register window (hold.go).
		held     = hold{}
		answer   listing // what the last answer listed, without held
		synced   bool    // an answer arrived since the start
		advanced bool    // the last answer was a change: see below
		agent    int     // the agent asked; moves on when it fails
		failed   int     // queries failed in a row
		filtered bool    // the last answer was filtered by ACLs
		dcKnown  bool    // the agent listed our datacenter (explainQueryError)
	)
	for {
		if !advanced {
			if err := limiter.Wait(ctx); err != nil {
				return
			}
		}
		advanced = false
		if held.expire(time.Now()) {
			// A window is over: the set drops what the agent does not list.
			// Published now, not when the next answer comes (minutes, if
			// nothing changes); while queries fail the next error event
			// carries it.
			last = answer.with(held)
			if !afterErr {
				in.Update(sd.Event{Instances: last.strs})
				r.cfg.observer.Instances(in.service, len(last.strs))
			}
		}
		wait := r.cfg.waitTime
		if afterErr {
			// The agent may have restarted meanwhile and count its index
			// from scratch: a query with our old, higher index would then
			// block for the whole wait time. So the first query after a
			// failure barely waits: its answer says the agent is readable
			// again, and (below) holds the last good set for the time
			// instances take to register again, rather than publishing the
			// restarted agent's empty set. It used to wait out that window
			// — this process's own TTL + 1 s, which a watcher cannot know
			// for its registrars — reporting the outage for 67 s with a
			// 60 s TTL after the agent was back (report j50d 6).
			wait = afterErrWait
		}
		if until, ok := held.next(); ok && time.Until(until) > 0 {
			// Ask again when a window ends, to drop what did not come back.
			wait = min(wait, time.Until(until)+10*time.Millisecond)
		}
		woken := back.wait() // before the query: a fire during it is kept
		entries, meta, err := in.query(ctx, agent, index, wait)
		if ctx.Err() != nil {
			return
		}
		if err != nil && failed+1 < len(r.agents) {
			// Another agent may answer: ask it at once, and publish the
			// error only when every agent failed in a row. Indexes are the
			// servers', the same through any agent of the datacenter.
			// Once every agent has failed, the outage log speaks for them.
			lvl := level.Warn
			if outage.Failing() {
				lvl = level.Debug
			}
			lvl(logger).Log("msg", "discovery query failed; asking the next agent",
				"agent", r.cfg.addresses[agent], "err", err)
			failed++
			agent = (agent + 1) % len(r.agents)
			afterErr = true // bound the next wait, as after any failure
			continue
		}
		if err != nil {
			// An agent that cannot be reached, or whose servers cannot
			// answer, is waited for by the Registry's probe (wake.go); an
			// answer refusing this query (ACL, a bad datacenter) is not.
			agentDown := unreachable(ctx, err) || statusCode(err) >= 500
			err = r.explainQueryError(ctx, agent, in.cfg.datacenter, err, &dcKnown)
			agentDown = agentDown && !errors.Is(err, ErrUnknownDatacenter)
			failed = 0
			agent = (agent + 1) % len(r.agents)
			err = fmt.Errorf("consul: discover %s: %w", in.service, connLimited(err))
			outage.Failed(err, "instances", len(last.strs))
			in.Update(sd.Event{Instances: last.strs, Err: err})
			published()
			r.cfg.observer.WatchRestarted(in.service, err)
			afterErr = true
			if agentDown {
				r.agentFailed(in.cfg.datacenter, back)
			}
			if !backoff.SleepUnless(ctx, bo.Next(), woken) {
				return
			}
			continue
		}
		bo.Reset()
		failed = 0
		held.expire(time.Now()) // as at the top
		if afterErr || meta.LastIndex < index {
			// The first answer after a failure, or one from an agent whose
			// index went backwards: hold what the agent listed last for one
			// re-register window from now. What is held already keeps its
			// own window (hold.go). A hold emptied by the agent listing
			// everything again must not stop the next one: it once did,
			// until its window ended, and an agent lost right after a
			// leader election published an empty set (CI, 6 Dec 2026).
			held.add(answer, time.Now().Add(r.reregisterWindow()))
		}
		afterErr = false
		// A change is a higher index than the one we waited on. The first
		// answer is one too (the set went from unknown to known), but the
		// read that follows an index reset is not: were it, an index that
		// kept going backwards would buy two queries per token.
		advanced = meta.LastIndex > index && (index > 0 || !synced)
		synced = true
		if index = nextIndex(index, meta.LastIndex); index == 0 {
			r.cfg.observer.WatchRestarted(in.service, errIndexBack)
		}
		filtered = in.sayFiltered(filtered, meta.ResultsFilteredByACLs, len(entries))
		answer = in.instances(entries)
		// A held instance the agent lists has come back: from now on the
		// agent speaks for it, so a withdrawal after it (a rolling
		// restart right after the agent's return) takes it out at once,
		// not when the window ends (report j60b F1).
		held.release(answer.ids)
		last = answer.with(held)
		in.Update(sd.Event{Instances: last.strs})
		published()
		r.cfg.observer.Instances(in.service, len(last.strs))
		outage.Recovered("instances", len(last.strs))
	}
}

// afterErrWait is the wait of the first query after a failed one.
const afterErrWait = 10 * time.Millisecond

// reregisterWindow is how long registrars take to notice an agent that
// forgot them and register again: a TTL, or without a TTL check one
// check-interval poll, plus a second.
func (r *Registry) reregisterWindow() time.Duration {
	if ttl, ok := r.cfg.ttlCheck(); ok {
		return ttl.TTL + time.Second
	}
	return r.cfg.probeInterval() + time.Second
}

// errIndexBack is the restart reason when Consul's index went backwards.
var errIndexBack = errors.New("consul index went backwards (servers restarted or restored)")

// nextIndex applies Consul's blocking-query rules: an index that goes
// backwards (servers restarted or restored a snapshot) means start over
// with a non-blocking read; an index of 0 would never block, so it is
// treated as 1.
func nextIndex(prev, got uint64) uint64 {
	switch {
	case got < prev:
		return 0
	case got == 0:
		return 1
	default:
		return got
	}
}

// query runs one blocking health query. Its deadline is the wait time plus
// Consul's up-to-1/16 jitter plus the request timeout. A query with index
// 0 does not block (Consul answers it at once), so it gets the request
// timeout alone: an agent that accepts the connection and never answers
// is then reported after that, not after a whole wait time (~64 s).
func (in *Instancer) query(ctx context.Context, agent int, index uint64, wait time.Duration) ([]*api.ServiceEntry, *api.QueryMeta, error) {
	timeout := wait + wait/16 + in.r.cfg.requestTimeout
	if index == 0 {
		timeout = in.r.cfg.requestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	q := &api.QueryOptions{
		Datacenter: in.cfg.datacenter,
		AllowStale: in.cfg.allowStale,
		WaitIndex:  index,
		WaitTime:   wait,
	}
	return in.r.agents[agent].Health().ServiceMultipleTags(in.service, in.cfg.tags, true, q.WithContext(ctx))
}

// sayFiltered logs when Consul starts and stops hiding instances of the
// service from the token, and returns now. Consul answers a token that
// may not read a service or the nodes its instances run on as if they
// did not exist (with ACLs on and a policy lacking node:read, discovery
// finds nothing); only a response header says some were left out.
// Without this log the instancer would serve an empty set as the truth.
func (in *Instancer) sayFiltered(was, now bool, shown int) bool {
	switch {
	case now && !was:
		in.r.logErr("Consul hides some instances from this token (ACLs): discovery lists only those it may read; "+
			"the token needs service:read on the service and node:read on the nodes it runs on",
			"service", in.service, "listed", shown)
	case was && !now:
		in.r.logInfo("Consul no longer hides instances from this token", "service", in.service)
	}
	return now
}

// listing is a set of instances in the agent's order: their IDs and the
// strings go-kit is handed, index for index.
type listing struct{ ids, strs []string }

// instances renders health entries as registry.Instance strings, with
// their IDs. Entries that do not make a valid instance (no address, say)
// are skipped.
func (in *Instancer) instances(entries []*api.ServiceEntry) listing {
	ids := make([]string, 0, len(entries))
	out := make([]string, 0, len(entries))
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		// One ID on two nodes: a registration that moved between agents
		// (WithAddresses) is briefly passing on both. It is one instance.
		if e.Service != nil {
			if seen[e.Service.ID] {
				continue
			}
			seen[e.Service.ID] = true
		}
		inst, err := toInstance(e)
		if err == nil {
			err = validateDiscovered(inst)
		}
		if err != nil {
			in.r.logErr("skipping unusable instance", "service", in.service, "err", err)
			continue
		}
		ids, out = append(ids, inst.ID), append(out, inst.String())
	}
	return listing{ids: ids, strs: out}
}
