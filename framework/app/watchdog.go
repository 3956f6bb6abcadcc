package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-kit/log/level"
)

// watchdog withdraws the instance after watchdogFailures consecutive
// failures of the service's own readiness checks and registers it again
// once they pass, so a deadlocked handler or a dead dependency stops
// attracting traffic without a restart.
func (a *App) watchdog(ctx context.Context) {
	// A run of the checks is served again for ownCacheAge: asked sooner,
	// the same failed run would count as several of the N. Waiting that
	// long after each ask returned makes every answer a run of its own.
	every := max(a.opts.watchdogInterval, a.ownCacheAge)
	t := time.NewTimer(every)
	defer t.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.watchdogTick(ctx, &fails)
		t.Reset(every)
	}
}

// watchdogTick is one look at the checks; fails counts consecutive failures.
func (a *App) watchdogTick(ctx context.Context, fails *int) {
	if a.draining.Load() {
		return
	}
	err := a.ownReadiness(ctx)
	switch {
	case err != nil:
		*fails++
		if *fails == a.opts.watchdogFailures && !a.withdrawn.Load() {
			a.watchdogWithdraw(ctx, err)
		}
	case a.withdrawn.Load():
		*fails = 0
		a.watchdogRestore(ctx)
	default:
		*fails = 0
	}
}

func (a *App) watchdogWithdraw(ctx context.Context, cause error) {
	inst := a.Instance()
	c, cancel := context.WithTimeout(ctx, a.opts.withdrawTimeout)
	defer cancel()
	err := a.registry.Deregister(c, inst)
	a.withdrawn.Store(true)
	a.registered.Store(false)
	if err != nil {
		// The registrar may have let go of the instance all the same (etcd
		// does): the stop's Deregister would then have nothing to do and
		// say so, with this record still listed.
		a.setUnwithdrawn(fmt.Errorf("the watchdog's withdrawal failed: %w", err))
	}
	level.Warn(a.logger).Log("msg", "watchdog withdrew instance", "failures", a.opts.watchdogFailures, "cause", cause, "err", errString(err))
}

func (a *App) watchdogRestore(ctx context.Context) {
	inst := a.Instance()
	timeout := a.opts.registerTimeout // the watchdog's attempts are always bounded
	if timeout == 0 {
		timeout = DefaultRegisterTimeout
	}
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := a.registry.Register(c, inst); err != nil {
		level.Warn(a.logger).Log("msg", "watchdog could not register again", "err", err)
		return
	}
	a.setUnwithdrawn(nil)
	a.withdrawn.Store(false)
	a.registered.Store(true)
	level.Info(a.logger).Log("msg", "watchdog restored instance", "id", inst.ID)
}

// ownReadiness runs the service's own checks plus draining: what the
// service says about itself, without the registration (which depends on it).
func (a *App) ownReadiness(ctx context.Context) error {
	if a.draining.Load() {
		return errors.New("draining")
	}
	if rep := a.own.Run(ctx); !rep.OK() {
		failed := rep.Failed()
		return fmt.Errorf("readiness check %q failed: %s", failed[0], rep.Checks[failed[0]].Detail)
	}
	return nil
}

// setUnwithdrawn records why the watchdog's last withdrawal may have left
// the record listed; nil once it registered the instance again.
func (a *App) setUnwithdrawn(err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unwithdrawn = err
}
