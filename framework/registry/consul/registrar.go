package consul

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// registration is one instance the Registry keeps registered. It is in
// Registry.regs from the start of its Register; its keep goroutine, started
// once the agent has accepted it, is stopped by stop, which waits for it.
type registration struct {
	inst    registry.Instance
	checkID string
	cancel  context.CancelFunc
	done    chan struct{}

	// agent is the index of the agent holding the registration, and stale
	// those that may still hold an older copy of it (they could not be
	// reached when it moved). Written by Register and then only by the
	// keep goroutine; read by Deregister and Close after stop.
	agent int
	stale []int
	// slowSince is when calls to the agent began to time out (zero while
	// they do not); see Registry.gone. Owned like agent.
	slowSince time.Time
	// mark is the mark of the last register call at the holding agent,
	// made at markedAt; listed says the servers have been seen to list
	// that copy, and unlisted counts their answers without it
	// (confirmListed). Owned like agent.
	mark     string
	markedAt time.Time
	listed   bool
	unlisted int
	// confirmErrs counts the questions in a row the servers failed to
	// answer (confirmListed, confirmDelay). Owned like agent.
	confirmErrs int
	// node is the node the servers list the holding agent's copy on, once
	// they have (confirmListed, goHome): where Deregister looks for it.
	node string
	// homeFailed counts the tries in a row to move back home whose copy
	// the servers did not list; goHome tries again after homeAfter.
	homeFailed int
	homeAfter  time.Time
}

// stop ends the keep goroutine, if it was started. Idempotent.
func (g *registration) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
}

// op is the Register or Deregister running for one ID. Calls for one ID
// run one at a time, the newest winning: a new call preempts a Register
// still waiting for the agent (it returns an error) and waits for the
// running call to finish, so a Deregister never races the Register before
// it and leaves no instance registered behind its back.
type op struct {
	preempt func() // nil: the op runs to its end (Deregister)
	done    chan struct{}
}

// errPreempted ends a Register that a later call for the same ID replaced.
var errPreempted = errors.New("withdrawn or replaced before it was published")

// beginOp waits until no other call for id runs, preempting a waiting
// Register, and makes the caller's call the running one. The returned
// func ends it.
func (r *Registry) beginOp(id string, preempt func()) (end func()) {
	me := &op{preempt: preempt, done: make(chan struct{})}
	r.mu.Lock()
	for {
		prev := r.ops[id]
		if prev == nil {
			break
		}
		if prev.preempt != nil {
			prev.preempt()
		}
		r.mu.Unlock()
		<-prev.done
		r.mu.Lock()
	}
	r.ops[id] = me
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.ops[id] == me {
			delete(r.ops, id)
		}
		r.mu.Unlock()
		close(me.done)
	}
}

// Register publishes inst with the agent and returns once the agent has
// accepted it. While the agent cannot be reached it retries with jittered
// backoff until ctx ends or the Registry is closed (ErrClosed); requests
// the agent refuses (400, 403) fail at once. Registering an ID the Registry
// already holds replaces it. An ID the agent holds for another live
// instance at a different address is refused with registry.ErrConflict (a
// holder whose check is critical for any reason but its own "not ready"
// report is taken for dead and replaced). A WithDatacenter or WithFailover
// datacenter the agent does not list is refused with ErrUnknownDatacenter
// (checked once the agent answers, once per Registry).
//
// After Register returns nil the Registry keeps inst registered until
// Deregister or Close. Register and Deregister of one ID are serialised:
// a Deregister that comes while Register still waits for the agent ends
// that Register with an error, and the instance is not left registered.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := validate(inst); err != nil {
		return fmt.Errorf("consul: register: %w", err)
	}
	if _, err := r.cfg.checkDefinitions(inst, "", ""); err != nil {
		return fmt.Errorf("consul: register: %w", err)
	}
	inst = cloneInstance(inst)
	reg := &registration{inst: inst, checkID: "service:" + inst.ID}

	// Close ends the retries too, not only the caller's ctx, and so does a
	// later call for the same ID.
	callerCtx := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(r.ctx, func() { cancel(ErrClosed) })()
	end := r.beginOp(inst.ID, func() { cancel(errPreempted) })
	defer end()

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("consul registry: %w", ErrClosed)
	}
	old, _, _ := r.regs.Get(inst.ID)
	r.regs.Put(inst.ID, reg, registry.StateUnregistered)
	r.mu.Unlock()
	if old != nil {
		old.stop() // its heartbeat must not race the new definition
		reg.agent = old.agent
		reg.stale = old.stale
	}

	// withdrawOld withdraws, after a replacement failed, the copies of
	// the registration it replaced (reg holds their agents: claim moves
	// reg.agent only when it succeeds). Their heartbeat is stopped and no
	// record is left of them: left on the agent, the copy stayed listed,
	// passing until its TTL ran out, and Close did not withdraw it.
	withdrawOld := func() {
		if old == nil {
			return
		}
		dctx, cancel := context.WithTimeout(context.Background(), r.cfg.deregTimeout)
		defer cancel()
		awayCopies(reg)
		r.withdrawStale(dctx, reg)
		if err := r.deregister(dctx, r.agents[reg.agent], inst.ID); err != nil {
			r.logErr("could not withdraw the registration a failed Register was to replace", "id", inst.ID, "err", err)
		}
	}
	// fail ends an unsuccessful Register: the registration goes, and so
	// does the state it held.
	fail := func(err error) error {
		r.mu.Lock()
		r.regs.Failed(err)
		r.regs.Drop(inst.ID, reg, nil)
		r.mu.Unlock()
		withdrawOld()
		return err
	}
	ended := func(last error) error {
		switch cause := context.Cause(ctx); {
		case callerCtx.Err() != nil:
			return fail(fmt.Errorf("consul: register %s: %w (last error: %w)", inst.ID, callerCtx.Err(), last))
		case errors.Is(cause, ErrClosed):
			// Close skips a registration whose Register still runs.
			withdrawOld()
			return fmt.Errorf("consul registry: %w", ErrClosed)
		default:
			return fail(fmt.Errorf("consul: register %s: %w", inst.ID, connLimited(cause)))
		}
	}

	bo := backoff.New(r.cfg.backoffMin, r.cfg.backoffMax)
	claimed := old != nil // our own ID: moving or refreshing it is no conflict
	prev := reg.agent
	// informative is the last failure that says why the agent did not
	// take the record; an attempt the deadline cut short says only that
	// time ran out, which the caller knows.
	var informative error
	for {
		err := r.claim(ctx, reg, claimed)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ended(cmp.Or(informative, err))
		}
		informative = err
		if errors.Is(err, registry.ErrConflict) || errors.Is(err, ErrUnknownDatacenter) {
			return fail(fmt.Errorf("consul: register: %w", err))
		}
		if permanent(err) {
			return fail(fmt.Errorf("consul: register %s: %w", inst.ID, err))
		}
		r.setStatus(reg, registry.StateRetrying, err)
		r.logErr("register failed; retrying", "id", inst.ID, "err", err)
		if !backoff.Sleep(ctx, bo.Next()) {
			return ended(err)
		}
	}
	if old != nil && reg.agent != prev {
		reg.stale = addIndex(reg.stale, prev)
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		dctx, cancel := context.WithTimeout(context.Background(), r.cfg.deregTimeout)
		defer cancel()
		_ = r.deregister(dctx, r.agents[reg.agent], inst.ID)
		return fmt.Errorf("consul registry: %w", ErrClosed)
	}
	kctx, kcancel := context.WithCancel(r.ctx)
	reg.cancel, reg.done = kcancel, make(chan struct{})
	r.wg.Add(1)
	go r.keep(kctx, reg)
	r.mu.Unlock()
	r.setStatus(reg, registry.StateRegistered, nil)
	return nil
}

// claim makes one attempt at the first registration: unless the ID is
// already ours, it checks that no live instance at another address holds
// it, then registers. It tries the home agent first and, while an agent
// cannot be reached, the next one in order; reg.agent says who took it.
func (r *Registry) claim(ctx context.Context, reg *registration, ours bool) error {
	var err error
	for k, a := range r.agents {
		if err = r.checkDatacenters(ctx, a, r.cfg.addresses[k]); err != nil {
			if unreachable(ctx, err) {
				continue
			}
			return err
		}
		if !ours {
			if err = r.checkConflict(ctx, a, reg.inst); err != nil {
				if unreachable(ctx, err) {
					continue
				}
				return err
			}
		}
		if err = r.register(ctx, a, reg); err == nil {
			reg.agent = k
			return nil
		}
		if !unreachable(ctx, err) {
			return err
		}
	}
	return err
}

// checkConflict asks the agent who holds inst.ID. Nobody, the same
// address, or a holder whose check is critical for another reason than
// its own "not ready" heartbeat (TTL expired, HTTP check failing: the
// process is gone) is no conflict. The check and the register that
// follows are two calls: two processes claiming one ID in the same moment
// can both pass it (Consul has no compare-and-set for agent services).
func (r *Registry) checkConflict(ctx context.Context, a *api.Client, inst registry.Instance) error {
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	status, info, err := serviceHealth(a, inst.ID, (&api.QueryOptions{}).WithContext(cctx))
	if err != nil {
		return fmt.Errorf("looking up who holds %s: %w", inst.ID, err)
	}
	if info == nil || info.Service == nil {
		return nil // not registered on this agent
	}
	held := info.Service
	if host, port := hostPort(inst.HostPort()); held.Address == host && held.Port == port {
		return nil
	}
	if status == api.HealthCritical && !reportsNotReady(info.Checks) {
		return nil
	}
	return fmt.Errorf("%w: %s is held by %s (%s), refused for %s", registry.ErrConflict, inst.ID,
		net.JoinHostPort(held.Address, strconv.Itoa(held.Port)), status, inst.HostPort())
}

// serviceHealth is the agent's GET /v1/agent/health/service/id/<id>: the
// aggregated status of the service's checks with the service, or a nil
// info when the agent does not hold it. consul/api's
// AgentHealthServiceByIDOpts decodes the body of every answer but a 404 as
// JSON, so a refusal ("403 ACL not found", "400 Client sent an HTTP
// request to an HTTPS server") came out as "invalid character 'A' looking
// for beginning of value", hiding the status, and was retried as if the
// agent could not be reached. Here every answer the endpoint does not give
// for a service (200 passing, 429 warning, 503 critical, 404 unknown) is
// an api.StatusError with the status and Consul's text, which permanent
// and unreachable read like any other call's.
func serviceHealth(a *api.Client, id string, q *api.QueryOptions) (string, *api.AgentServiceChecksInfo, error) {
	var info *api.AgentServiceChecksInfo
	_, err := a.Raw().Query("/v1/agent/health/service/id/"+id, &info, q)
	if err == nil {
		return api.HealthPassing, info, nil
	}
	var se api.StatusError
	if !errors.As(err, &se) {
		return "", nil, err // not answered, or a 200 whose body did not decode
	}
	var status string
	switch se.Code {
	case http.StatusNotFound:
		return api.HealthCritical, nil, nil
	case http.StatusTooManyRequests:
		status = api.HealthWarning
	case http.StatusServiceUnavailable:
		status = api.HealthCritical
	default:
		return "", nil, err
	}
	// The endpoint answers 429 and 503 with the service and its checks;
	// a body that is not that (a rate limit, a proxy) stays the error.
	if json.Unmarshal([]byte(se.Body), &info) != nil || info == nil || info.Service == nil {
		return "", nil, err
	}
	return status, info, nil
}

// reportsNotReady reports whether a critical check is a live process
// saying it is not ready (our TTL heartbeat's output), not a dead one.
func reportsNotReady(checks api.HealthChecks) bool {
	for _, c := range checks {
		if c.Status == api.HealthCritical && strings.HasPrefix(c.Output, notReadyPrefix) {
			return true
		}
	}
	return false
}

// Deregister stops keeping inst registered and withdraws it from the agent,
// bounded by ctx and the deregister timeout, and then makes sure the
// servers dropped it too (confirmWithdrawn). Withdrawing an instance the
// agent does not know is not an error, and neither is withdrawing after
// Close (Close withdrew everything). Register may follow.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	end := r.beginOp(inst.ID, nil)
	defer end()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	reg, _ := r.regs.Withdraw(inst.ID)
	r.mu.Unlock()
	if reg != nil {
		reg.stop()
	}

	ctx, cancel := context.WithTimeout(ctx, r.cfg.deregTimeout)
	defer cancel()
	at := 0
	if reg != nil {
		at = reg.agent
		awayCopies(reg)
		r.withdrawStale(ctx, reg)
	}
	if err := r.deregister(ctx, r.agents[at], inst.ID); err != nil {
		err = fmt.Errorf("consul: deregister %s: %w", inst.ID, err)
		r.mu.Lock()
		r.regs.Failed(err)
		r.mu.Unlock()
		return err
	}
	if reg != nil {
		r.confirmWithdrawn(ctx, r.agents[at], reg.inst, reg.node, reg.mark)
	}
	return nil
}

// keep heartbeats the TTL check (or, without one, polls the agent for the
// service) and registers reg again whenever the agent has forgotten it.
// Failed calls are retried with backoff capped at the heartbeat interval, so
// an agent that comes back sees the instance within one interval.
func (r *Registry) keep(ctx context.Context, reg *registration) {
	defer r.wg.Done()
	defer close(reg.done)

	interval := r.beatInterval()
	bo := backoff.New(min(r.cfg.backoffMin, interval), min(r.cfg.backoffMax, interval))
	// A heartbeat right after each registration, not an interval later:
	// an agent that already holds a check of the ID keeps that check's
	// status over the one registered — the critical copy a restarted
	// agent restored from disk (its TTL ran out while it was down), or a
	// crashed run's — so the instance is critical until a beat. Made here
	// rather than in Register: during a leader election the agent's API
	// can stall for seconds, and Register has returned by then.
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, ttl := r.cfg.ttlCheck(); ttl && r.paused.Load() {
			t.Reset(interval)
			continue
		}
		err := r.beat(ctx, r.agents[reg.agent], reg)
		next := interval
		switch {
		case lost(err):
			r.logInfo("agent lost the instance; registering again", "id", reg.inst.ID, "err", err)
			if err = r.register(ctx, r.agents[reg.agent], reg); err == nil {
				r.countRereg()
				next = 0 // registered again: beat at once (above)
			}
		case unreachable(ctx, err) && len(r.agents) > 1 && r.gone(reg, err):
			if err = r.failover(ctx, reg, err); err == nil {
				r.countRereg()
				next = 0
			}
		}
		if err == nil {
			reg.slowSince = time.Time{}
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			r.goHome(ctx, reg)
			r.withdrawStale(ctx, reg)
			if !r.confirmListed(ctx, reg) {
				next = min(next, r.confirmDelay(reg))
			}
		}
		if err != nil {
			r.setStatus(reg, registry.StateRetrying, err)
			r.logErr("keeping instance registered failed; retrying", "id", reg.inst.ID, "err", err)
			t.Reset(bo.Next())
			continue
		}
		bo.Reset()
		r.setStatus(reg, registry.StateRegistered, nil)
		t.Reset(next)
	}
}

func (r *Registry) beatInterval() time.Duration {
	if ttl, ok := r.cfg.ttlCheck(); ok {
		return ttl.TTL / 3
	}
	return r.cfg.probeInterval()
}

// beat makes one keep-alive call: a TTL update, or without a TTL check a
// look-up of the service on the agent.
func (r *Registry) beat(ctx context.Context, a *api.Client, reg *registration) error {
	if _, ok := r.cfg.ttlCheck(); !ok {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
		defer cancel()
		_, _, err := a.Agent().Service(reg.inst.ID, (&api.QueryOptions{}).WithContext(cctx))
		return err
	}
	status, output := r.health(ctx)
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	return a.Agent().UpdateTTLOpts(reg.checkID, output, status, (&api.QueryOptions{}).WithContext(cctx))
}

// notReadyPrefix starts the output of a TTL check a live, unready process
// reports; checkConflict tells it from a dead holder by it.
const notReadyPrefix = "not ready: "

// health asks the service's readiness, bounded by one heartbeat interval.
func (r *Registry) health(ctx context.Context) (status, output string) {
	r.mu.Lock()
	ready := r.ready
	r.mu.Unlock()
	if ready == nil {
		return api.HealthPassing, "ready"
	}
	ctx, cancel := context.WithTimeout(ctx, r.beatInterval())
	defer cancel()
	if err := ready(ctx); err != nil {
		return api.HealthCritical, notReadyPrefix + err.Error()
	}
	return api.HealthPassing, "ready"
}

// register makes one service-register call to agent a, which then holds
// reg: the servers are yet to list the copy it made (confirmListed), and
// none of their answers so far was about it (the previous copy's count of
// answers without it once carried over, and a copy registered again while
// the servers refused writes was asked about a few times, not
// maxUnlisted).
func (r *Registry) register(ctx context.Context, a *api.Client, reg *registration) error {
	mark, err := r.registerMarked(ctx, a, reg)
	if err == nil {
		reg.mark, reg.markedAt, reg.listed, reg.node = mark, time.Now(), false, ""
		reg.unlisted = 0
	}
	return err
}

// registerMarked is register that also returns the mark this call's
// definition carries in its checks' notes (newMark).
func (r *Registry) registerMarked(ctx context.Context, a *api.Client, reg *registration) (string, error) {
	var status, output string
	if _, ok := r.cfg.ttlCheck(); ok {
		status, output = r.health(ctx)
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	mark := newMark()
	def := r.serviceDefinition(reg, status, output, mark)
	return mark, a.Agent().ServiceRegisterOpts(def, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(cctx))
}

// newMark returns a string no earlier registration carries: each
// register call puts one in its checks' notes, so the catalog says which
// call its copy is from (goHome). It also makes every call a change the
// agent syncs to the servers.
func newMark() string {
	return fmt.Sprintf("warren registration %016x", rand.Uint64())
}

// deregister makes one service-deregister call to agent a; an unknown
// service is fine.
func (r *Registry) deregister(ctx context.Context, a *api.Client, id string) error {
	err := a.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
	if statusCode(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// serviceDefinition renders reg for the agent. status and output are the
// initial state of a TTL check, so a ready instance is passing at once;
// mark goes into every check's notes.
func (r *Registry) serviceDefinition(reg *registration, status, output, mark string) *api.AgentServiceRegistration {
	def := serviceRegistration(reg.inst)
	// Register has checked that inst can carry the checks.
	def.Checks, _ = r.cfg.checkDefinitions(reg.inst, status, output)
	for _, c := range def.Checks {
		c.Notes = strings.TrimPrefix(c.Notes+"; "+mark, "; ")
	}
	return def
}

func cloneInstance(i registry.Instance) registry.Instance {
	i.Tags = slices.Clone(i.Tags)
	i.Metadata = maps.Clone(i.Metadata)
	return i
}

// lost reports whether the agent answered that it does not know the check
// or service: it restarted with fresh state, or someone deregistered us.
func lost(err error) bool {
	if err == nil {
		return false
	}
	if statusCode(err) == http.StatusNotFound {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "unknown check") || strings.Contains(s, "unknown service") ||
		strings.Contains(s, "does not have associated ttl")
}

// permanent reports whether retrying err cannot help: the agent refused the
// request itself (bad definition, ACL denied).
func permanent(err error) bool {
	code := statusCode(err)
	return code >= 400 && code < 500 && code != http.StatusNotFound && code != http.StatusTooManyRequests
}
