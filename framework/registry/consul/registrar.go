package consul

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// Meta keys the Registry writes next to the instance's own Metadata. They
// are reserved: an instance whose Metadata uses one is refused.
const (
	metaVersion = "version"
	metaZone    = "zone"
	metaWeight  = "weight"
	metaScheme  = "scheme"
	// metaDC is never stored; instancers add it to Metadata from the node's
	// datacenter.
	metaDC = "dc"
)

var reservedMeta = []string{metaVersion, metaZone, metaWeight, metaScheme, metaDC}

// Consul's own limits on service meta (agent/structs.ValidateServiceMetadata).
var metaKeyRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

const (
	maxMetaKeyLen   = 128
	maxMetaValueLen = 512
	maxMetaPairs    = 64
)

// registration is one instance the Registry keeps registered. Its keep
// goroutine is stopped by stop, which waits for it to return.
type registration struct {
	inst    registry.Instance
	checkID string
	cancel  context.CancelFunc
	done    chan struct{}
}

func (g *registration) stop() {
	g.cancel()
	<-g.done
}

// Register publishes inst with the agent and returns once the agent has
// accepted it. While the agent cannot be reached it retries with jittered
// backoff until ctx ends or the Registry is closed (ErrClosed); requests
// the agent refuses (400, 403) fail at once. Registering an ID the Registry
// already holds replaces it.
//
// After Register returns nil the Registry keeps inst registered until
// Deregister or Close. Register and Deregister of the same instance are not
// ordered against each other: call them in sequence.
func (r *Registry) Register(ctx context.Context, inst registry.Instance) error {
	if err := validate(inst); err != nil {
		return fmt.Errorf("consul: register: %w", err)
	}
	inst = cloneInstance(inst)
	reg := &registration{inst: inst, checkID: "service:" + inst.ID}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	old := r.regs[inst.ID]
	delete(r.regs, inst.ID)
	r.current = reg
	r.status = registry.Status{State: registry.StateUnregistered, Since: time.Now()}
	r.mu.Unlock()
	if old != nil {
		old.stop() // its heartbeat must not race the new definition
	}

	// Close ends the retries too, not only the caller's ctx.
	callerCtx := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.ctx, cancel)()

	bo := backoff.New(r.cfg.backoffMin, r.cfg.backoffMax)
	for {
		err := r.register(ctx, reg)
		if err == nil {
			break
		}
		if r.ctx.Err() != nil && callerCtx.Err() == nil {
			return ErrClosed
		}
		if ctx.Err() != nil {
			r.setStatus(reg, registry.StateUnregistered, err)
			return fmt.Errorf("consul: register %s: %w (last error: %w)", inst.ID, ctx.Err(), err)
		}
		if permanent(err) {
			r.setStatus(reg, registry.StateUnregistered, err)
			return fmt.Errorf("consul: register %s: %w", inst.ID, err)
		}
		r.setStatus(reg, registry.StateRetrying, err)
		r.logErr("register failed; retrying", "id", inst.ID, "err", err)
		if !backoff.Sleep(ctx, bo.Next()) {
			if callerCtx.Err() == nil {
				return ErrClosed
			}
			r.setStatus(reg, registry.StateUnregistered, err)
			return fmt.Errorf("consul: register %s: %w (last error: %w)", inst.ID, ctx.Err(), err)
		}
	}

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		dctx, cancel := context.WithTimeout(context.Background(), r.cfg.deregTimeout)
		defer cancel()
		_ = r.deregister(dctx, inst.ID)
		return ErrClosed
	}
	prev := r.regs[inst.ID] // a concurrent Register of the same ID
	r.regs[inst.ID] = reg
	kctx, cancel := context.WithCancel(r.ctx)
	reg.cancel, reg.done = cancel, make(chan struct{})
	r.wg.Add(1)
	go r.keep(kctx, reg)
	r.mu.Unlock()
	if prev != nil {
		prev.stop()
	}
	r.setStatus(reg, registry.StateRegistered, nil)
	return nil
}

// Deregister stops keeping inst registered and withdraws it from the agent,
// bounded by ctx and the deregister timeout. Withdrawing an instance the
// agent does not know is not an error. Register may follow.
func (r *Registry) Deregister(ctx context.Context, inst registry.Instance) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	reg := r.regs[inst.ID]
	delete(r.regs, inst.ID)
	if reg == nil && r.current != nil && r.current.inst.ID == inst.ID {
		reg = r.current // deregistering again: still report on it
	}
	r.mu.Unlock()
	if reg != nil && reg.cancel != nil {
		reg.stop()
	}

	ctx, cancel := context.WithTimeout(ctx, r.cfg.deregTimeout)
	defer cancel()
	err := r.deregister(ctx, inst.ID)
	if reg != nil {
		r.setStatus(reg, registry.StateWithdrawn, err)
	}
	if err != nil {
		return fmt.Errorf("consul: deregister %s: %w", inst.ID, err)
	}
	return nil
}

// keep heartbeats the TTL check (or, with an HTTP check, polls the agent for
// the service) and registers reg again whenever the agent has forgotten it.
// Failed calls are retried with backoff capped at the heartbeat interval, so
// an agent that comes back sees the instance within one interval.
func (r *Registry) keep(ctx context.Context, reg *registration) {
	defer r.wg.Done()
	defer close(reg.done)

	interval := r.beatInterval()
	bo := backoff.New(r.cfg.backoffMin, min(r.cfg.backoffMax, interval))
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.cfg.check == CheckTTL && r.paused.Load() {
			t.Reset(interval)
			continue
		}
		err := r.beat(ctx, reg)
		if lost(err) {
			r.logInfo("agent lost the instance; registering again", "id", reg.inst.ID, "err", err)
			if err = r.register(ctx, reg); err == nil {
				r.mu.Lock()
				r.reregs++
				r.mu.Unlock()
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.setStatus(reg, registry.StateRetrying, err)
			r.logErr("keeping instance registered failed; retrying", "id", reg.inst.ID, "err", err)
			t.Reset(bo.Next())
			continue
		}
		bo.Reset()
		r.setStatus(reg, registry.StateRegistered, nil)
		t.Reset(interval)
	}
}

func (r *Registry) beatInterval() time.Duration {
	if r.cfg.check == CheckHTTP {
		return r.cfg.httpInterval
	}
	return r.cfg.ttl / 3
}

// beat makes one keep-alive call: a TTL update, or a look-up of the service
// on the agent for HTTP checks.
func (r *Registry) beat(ctx context.Context, reg *registration) error {
	if r.cfg.check == CheckHTTP {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
		defer cancel()
		_, _, err := r.client.Agent().Service(reg.inst.ID, (&api.QueryOptions{}).WithContext(cctx))
		return err
	}
	status, output := r.health(ctx)
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	return r.client.Agent().UpdateTTLOpts(reg.checkID, output, status, (&api.QueryOptions{}).WithContext(cctx))
}

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
		return api.HealthCritical, "not ready: " + err.Error()
	}
	return api.HealthPassing, "ready"
}

// register makes one service-register call.
func (r *Registry) register(ctx context.Context, reg *registration) error {
	var status, output string
	if r.cfg.check == CheckTTL {
		status, output = r.health(ctx)
	}
	cctx, cancel := context.WithTimeout(ctx, r.cfg.requestTimeout)
	defer cancel()
	def := r.serviceDefinition(reg, status, output)
	return r.client.Agent().ServiceRegisterOpts(def, api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(cctx))
}

// deregister makes one service-deregister call; an unknown service is fine.
func (r *Registry) deregister(ctx context.Context, id string) error {
	err := r.client.Agent().ServiceDeregisterOpts(id, (&api.QueryOptions{}).WithContext(ctx))
	if statusCode(err) == http.StatusNotFound {
		return nil
	}
	return err
}

// serviceDefinition renders reg for the agent. status and output are the
// initial state of a TTL check, so a ready instance is passing at once.
func (r *Registry) serviceDefinition(reg *registration, status, output string) *api.AgentServiceRegistration {
	inst := reg.inst
	meta := maps.Clone(inst.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	if inst.Version != "" {
		meta[metaVersion] = inst.Version
	}
	if inst.Zone != "" {
		meta[metaZone] = inst.Zone
	}
	if inst.Weight > 0 {
		meta[metaWeight] = strconv.Itoa(inst.Weight)
	}
	if inst.Scheme != "" {
		meta[metaScheme] = inst.Scheme
	}
	check := &api.AgentServiceCheck{CheckID: reg.checkID}
	if r.cfg.deregCritical > 0 {
		check.DeregisterCriticalServiceAfter = r.cfg.deregCritical.String()
	}
	switch r.cfg.check {
	case CheckHTTP:
		check.Name = "warren " + r.cfg.healthPath
		check.HTTP = inst.BaseURL() + r.cfg.healthPath
		check.Method = http.MethodGet
		check.Interval = r.cfg.httpInterval.String()
		check.Timeout = r.cfg.httpTimeout.String()
	default:
		check.Name = "warren readiness"
		check.TTL = r.cfg.ttl.String()
		check.Status = status
		check.Notes = output
	}
	return &api.AgentServiceRegistration{
		ID:      inst.ID,
		Name:    inst.Name,
		Tags:    slices.Clone(inst.Tags),
		Address: inst.Address,
		Port:    inst.Port,
		Meta:    meta,
		Weights: &api.AgentWeights{Passing: inst.EffectiveWeight(), Warning: 1},
		Check:   check,
	}
}

// validate checks inst and the Consul limits on its metadata, so a bad
// instance fails here with ErrInvalidInstance rather than at the agent.
func validate(inst registry.Instance) error {
	if err := inst.Validate(); err != nil {
		return err
	}
	if len(inst.Metadata)+len(reservedMeta) > maxMetaPairs {
		return fmt.Errorf("%w: %s: more than %d metadata keys", registry.ErrInvalidInstance, inst.ID, maxMetaPairs-len(reservedMeta))
	}
	for k, v := range inst.Metadata {
		switch {
		case slices.Contains(reservedMeta, k):
			return fmt.Errorf("%w: %s: metadata key %q is reserved by the consul backend", registry.ErrInvalidInstance, inst.ID, k)
		case len(k) > maxMetaKeyLen || !metaKeyRE.MatchString(k):
			return fmt.Errorf("%w: %s: metadata key %q must match %s and be at most %d bytes", registry.ErrInvalidInstance, inst.ID, k, metaKeyRE, maxMetaKeyLen)
		case strings.HasPrefix(strings.ToLower(k), "consul-"):
			return fmt.Errorf("%w: %s: metadata key %q uses Consul's reserved prefix", registry.ErrInvalidInstance, inst.ID, k)
		case len(v) > maxMetaValueLen:
			return fmt.Errorf("%w: %s: metadata value of %q longer than %d bytes", registry.ErrInvalidInstance, inst.ID, k, maxMetaValueLen)
		}
	}
	return nil
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
