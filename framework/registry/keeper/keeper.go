// Package keeper is the re-register loop of a registry backend whose
// records live as long as a lease or session (etcd, ZooKeeper): a Keeper
// publishes one record, holds it, and publishes it again whenever it is
// lost, with capped, jittered backoff (framework/backoff), forever — until
// it is stopped. The backend supplies the writes (a Record) and hears
// every change of state (Config.Report), which it usually hands to a
// registry.Tracker for Status.
package keeper

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// ErrSuperseded ends a registration whose record was taken over by a
// newer registration of the same address (a newer run of this instance):
// fighting back would make the two overwrite each other forever. A Record
// wraps it; the Keeper then reports the registration withdrawn and stops.
var ErrSuperseded = errors.New("superseded by a newer registration of the same address")

// ErrRefused marks a Publish error no retry can help with: the registry
// refused this process's credentials (a ZooKeeper digest user whose
// password is not the one the ACL was made with). On the first claim it
// ends the Keeper and goes to its caller, as a conflict does; after a loss
// it is retried like any failure (an operator may fix the ACL).
var ErrRefused = errors.New("credentials refused")

// ErrLost marks a Hold error that says the record is surely gone (a
// ZooKeeper session the server expired, our znode deleted): the state
// turns retrying at once, as with Config.LossIsFailure, instead of waiting
// for the next Publish to tell.
var ErrLost = errors.New("registration lost")

// Record is one registration as its backend writes it. The Keeper calls
// its methods from its own goroutine, one at a time.
type Record interface {
	// Publish writes the record. again is false for the first claim and
	// true once it was published and then lost or came into doubt. wrote
	// reports whether it wrote the record anew (a re-registration) rather
	// than finding it in place. A registry.ErrConflict on the first claim
	// ends the Keeper (the caller of Register decides); later it is
	// retried, since the other holder may go.
	Publish(ctx context.Context, again bool) (wrote bool, err error)
	// Hold holds the published record until ctx ends (it returns nil) or
	// the record is lost or in doubt; it returns why.
	Hold(ctx context.Context) error
}

// Config says how a Keeper retries, logs and reports.
type Config struct {
	// BackoffMin and BackoffMax bound the wait between failed attempts,
	// and between publishes of a record lost less than BackoffMax after it
	// was published, twice or more in a row (a loss is otherwise published
	// again at once).
	BackoffMin, BackoffMax time.Duration
	// Logger gets a warning for every failed attempt (with the wait before
	// the next), every loss and every re-registration.
	Logger log.Logger
	// Name names the record in every log line: key-value pairs such as
	// "key", "/warren/services/user/u1".
	Name []any
	// Report hears every change of the registration's state: err is why
	// (nil when registered); reregistered is set when the record was
	// written again after a loss. It must not block.
	Report func(state registry.State, err error, reregistered bool)
	// LossIsFailure: a Hold error means the record is gone, and the state
	// turns retrying at once (etcd: a lost lease took it). Otherwise the
	// record is only in doubt and the next Publish tells (ZooKeeper: the
	// znode may have outlived a reconnect).
	LossIsFailure bool
	// Patient reports a Publish error, after a loss, that is waited out
	// without counting as a failure (ZooKeeper: the connection is down but
	// the session, and so the record, may live). Nil: none.
	Patient func(error) bool
}

// Keeper keeps one record published. Make it with New, start it with
// Start; its owner ends it with Stop (or Cancel and a wait on Done).
type Keeper struct {
	rec Record
	cfg Config

	ready   chan error // the outcome of the first publish, once at most
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	started atomic.Bool
	// withdrawing is set by the owner before it deletes the record, so the
	// loop does not take the deletion for a loss.
	withdrawing atomic.Bool
	// lostSaid: Lost logged a presumed loss not yet followed by a line
	// saying the record is back.
	lostSaid atomic.Bool

	mu       sync.Mutex
	lastErr  error
	failures int // failed attempts since the last success, for the log
}

// New returns a Keeper of rec that has not started.
func New(rec Record, cfg Config) *Keeper {
	ctx, cancel := context.WithCancel(context.Background())
	return &Keeper{
		rec: rec, cfg: cfg,
		ready: make(chan error, 1),
		ctx:   ctx, cancel: cancel,
		done: make(chan struct{}),
	}
}

// Start runs the loop in a goroutine the Keeper owns until Stop; Wait
// waits for its first publish.
func (k *Keeper) Start() {
	k.started.Store(true)
	go k.run(nil)
}

// Run is Start and Wait with the first publish made in the caller's
// goroutine: it returns what Wait would, and leaves the loop running in a
// goroutine the Keeper owns until Stop — holding the record once it is
// published, or trying again with backoff after a failed first attempt
// (Run then waits for it as Wait does). The first attempt also ends when
// ctx does. Publishing in the caller's goroutine spares a registration
// the hand-over to the loop's goroutine and back, which on a loaded
// machine can cost as much as a write to the registry.
func (k *Keeper) Run(ctx context.Context, what string) error {
	k.started.Store(true)
	actx, cancel := context.WithCancel(k.ctx)
	stop := context.AfterFunc(ctx, cancel)
	_, err := k.rec.Publish(actx, false)
	stop()
	cancel()
	switch {
	case k.stopped():
		close(k.done)
		if err == nil {
			return fmt.Errorf("%s: withdrawn right after publishing", what)
		}
		return fmt.Errorf("%s: withdrawn or closed before it was published", what)
	case err == nil:
		k.cfg.Report(registry.StateRegistered, nil, false)
		go func() {
			defer close(k.done)
			k.keep()
		}()
		return nil
	case errors.Is(err, registry.ErrConflict), errors.Is(err, ErrRefused):
		close(k.done) // refused on the first claim: the caller decides
		return err
	case ctx.Err() != nil:
		k.setLastErr(err)
		close(k.done)
		return gaveUp(what, ctx.Err(), err)
	}
	go k.run(err)
	return k.Wait(ctx, what)
}

// gaveUp is the error of a wait its context ended: both the context's
// error and the last attempt's are wrapped (errors.Is finds either).
func gaveUp(what string, ctxErr, last error) error {
	if last == nil {
		return fmt.Errorf("%s: %w (no attempt had failed yet)", what, ctxErr)
	}
	return fmt.Errorf("%s: %w (last error: %w)", what, ctxErr, last)
}

// Wait waits for the outcome of the first publish and returns it: nil
// once the record is published, or the error that ended the Keeper (a
// conflict). If the Keeper is stopped first (its owner withdrew it) or
// ctx ends (the error carries the last failure), the error starts with
// what ("etcd: register KEY").
func (k *Keeper) Wait(ctx context.Context, what string) error {
	select {
	case err := <-k.ready:
		return err
	case <-k.done:
		// Stopped by a concurrent Deregister or Close; it may still have
		// managed to report first.
		select {
		case err := <-k.ready:
			if err == nil {
				return fmt.Errorf("%s: withdrawn right after publishing", what)
			}
			return err
		default:
			return fmt.Errorf("%s: withdrawn or closed before it was published", what)
		}
	case <-ctx.Done():
		return gaveUp(what, ctx.Err(), k.LastError())
	}
}

// Done is closed when the loop has ended.
func (k *Keeper) Done() <-chan struct{} { return k.done }

// Withdraw tells the loop that its owner is deleting the record: it ends
// instead of publishing it again.
func (k *Keeper) Withdraw() { k.withdrawing.Store(true) }

// Cancel ends the loop without waiting for it.
func (k *Keeper) Cancel() { k.cancel() }

// Stop ends the loop and waits for it. It does not touch the backend.
// Idempotent; a Keeper never started is only cancelled.
func (k *Keeper) Stop() {
	k.cancel()
	if k.started.Load() {
		<-k.done
	}
}

// LastError is the most recent failure, for the caller of a Register that
// ran out of time.
func (k *Keeper) LastError() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// Lost logs that the record is presumed lost and reports the registration
// retrying (Failed): a Record's Hold calls it when it cannot publish yet
// (ZooKeeper out of reach past the session timeout). Once the record is in
// place again the Keeper logs so, also when it had outlived the outage.
func (k *Keeper) Lost(err error) {
	k.warn("registration presumed lost, re-registering once the registry answers", "err", err)
	k.lostSaid.Store(true)
	k.Failed(err)
}

// Failed records err and reports the registration retrying: a Record's
// Hold calls it when the record is presumed lost but cannot be published
// yet.
func (k *Keeper) Failed(err error) {
	k.setLastErr(err)
	k.cfg.Report(registry.StateRetrying, err, false)
}

func (k *Keeper) setLastErr(err error) {
	k.mu.Lock()
	k.lastErr = err
	k.mu.Unlock()
}

func (k *Keeper) stopped() bool { return k.ctx.Err() != nil || k.withdrawing.Load() }

func (k *Keeper) warn(msg string, keyvals ...any) {
	kv := append(append([]any{"msg", msg}, k.cfg.Name...), keyvals...)
	level.Warn(k.cfg.Logger).Log(kv...)
}

func (k *Keeper) backoff() *backoff.Backoff {
	return backoff.New(k.cfg.BackoffMin, k.cfg.BackoffMax)
}

// run publishes the record, then holds it: whenever it is lost it is
// published again, with backoff, until the Keeper is stopped. failed is
// the error of a first attempt Run made (nil: none was made).
func (k *Keeper) run(failed error) {
	defer close(k.done)
	bo := k.backoff()
	if failed != nil && !k.retry(bo, failed) {
		return
	}
	for {
		_, err := k.rec.Publish(k.ctx, false)
		if k.stopped() {
			return
		}
		if err == nil {
			k.succeeded()
			k.cfg.Report(registry.StateRegistered, nil, false)
			k.ready <- nil
			break
		}
		if errors.Is(err, registry.ErrConflict) || errors.Is(err, ErrRefused) {
			k.ready <- err // refused on the first claim: the caller decides
			return
		}
		if !k.retry(bo, err) {
			return
		}
	}
	k.keep()
}

// keep holds the published record, publishing it again every time it is
// lost.
func (k *Keeper) keep() {
	bo := k.backoff()
	quick := false // the last Hold ended less than BackoffMax after it began
	for {
		held := time.Now()
		reason := k.rec.Hold(k.ctx)
		if k.stopped() {
			return
		}
		if errors.Is(reason, ErrSuperseded) {
			k.superseded(reason)
			return
		}
		switch {
		case k.cfg.LossIsFailure, errors.Is(reason, ErrLost):
			k.warn("registration lost, re-registering", "err", reason)
			k.Failed(reason)
		case reason != nil:
			k.warn("registration lost or in doubt, checking", "reason", reason)
		}
		// A loss is published again at once, the backoff from its shortest
		// wait — unless this Hold and the one before it both ended within
		// BackoffMax (a keepalive or watch refused while writes work): the
		// same episode going on, whose next wait comes first, or Publish
		// and Hold alternate without pause.
		if short := time.Since(held) < k.cfg.BackoffMax; short && quick {
			if !backoff.Sleep(k.ctx, bo.Next()) {
				return
			}
		} else {
			bo.Reset()
			quick = short
		}
		if !k.republish(bo) {
			return
		}
	}
}

// republish publishes the record again until it is in place; false means
// the Keeper ends.
func (k *Keeper) republish(bo *backoff.Backoff) bool {
	for {
		wrote, err := k.rec.Publish(k.ctx, true)
		if k.stopped() {
			return false
		}
		switch {
		case err == nil:
			switch {
			case wrote:
				k.warn("re-registered")
			case k.lostSaid.Load():
				k.warn("registration confirmed: the record outlived the outage")
			}
			k.lostSaid.Store(false)
			k.succeeded()
			k.cfg.Report(registry.StateRegistered, nil, wrote)
			return true
		case errors.Is(err, ErrSuperseded):
			k.superseded(err)
			return false
		case k.cfg.Patient != nil && k.cfg.Patient(err):
			if !backoff.Sleep(k.ctx, bo.Next()) {
				return false
			}
		// A conflict here is retried too: the other holder may go (its
		// lease or session ends), and the record is ours to restore.
		case !k.retry(bo, err):
			return false
		}
	}
}

// succeeded starts the count of failed attempts again: the next outage's
// first failure is failures=1, not the sum of every outage so far.
func (k *Keeper) succeeded() {
	k.mu.Lock()
	k.failures = 0
	k.mu.Unlock()
}

func (k *Keeper) superseded(err error) {
	k.warn("registration superseded, not re-registering", "err", err)
	k.setLastErr(err)
	k.cfg.Report(registry.StateWithdrawn, err, false)
}

// retry records a failed attempt, logs it with the wait before the next
// one, and waits; false means the Keeper was stopped. Every attempt is
// logged: the backoff caps the rate (one line per BackoffMax at worst),
// and an operator watching a registration that does not come back wants
// to see it trying, and when it tries next.
func (k *Keeper) retry(bo *backoff.Backoff, err error) bool {
	wait := bo.Next()
	k.mu.Lock()
	k.failures++
	n := k.failures
	k.mu.Unlock()
	k.warn("registration attempt failed", "failures", n, "retry_in", wait, "err", err)
	k.Failed(err)
	return backoff.Sleep(k.ctx, wait)
}
