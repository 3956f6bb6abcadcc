package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
)

// errSuperseded ends a registration whose key was taken over by another
// lease for the same address: a newer run of this instance owns it now, and
// fighting back would make the two overwrite each other forever.
var errSuperseded = errors.New("superseded by a newer registration of the same address")

// registration keeps one instance published. Its loop goroutine is started
// by start and ended by stop; the Registry owns both calls.
type registration struct {
	r    *Registry
	inst registry.Instance
	key  string
	val  string

	// state is guarded by r.mu (the Registry aggregates it).
	state registry.State

	// ready receives the outcome of the first publish, exactly once unless
	// the loop is stopped first.
	ready  chan error
	cancel context.CancelFunc
	done   chan struct{}

	// withdrawing is set by Deregister just before it revokes our lease,
	// so the loop does not take the deletion for a loss.
	withdrawing atomic.Bool

	mu       sync.Mutex
	lease    clientv3.LeaseID // lease that holds, or last held, our key
	lastErr  error
	failures int // failed publish attempts, for the log
}

func newRegistration(r *Registry, inst registry.Instance, key, val string) *registration {
	return &registration{
		r: r, inst: inst, key: key, val: val,
		state: registry.StateUnregistered,
		ready: make(chan error, 1),
		done:  make(chan struct{}),
	}
}

func (g *registration) start() {
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	go g.run(ctx)
}

// stop ends the loop and waits for it. It does not touch etcd. Idempotent.
func (g *registration) stop() {
	if g.cancel == nil {
		return
	}
	g.cancel()
	<-g.done
}

func (g *registration) currentLease() clientv3.LeaseID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lease
}

func (g *registration) lastError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

func (g *registration) failed(err error) {
	g.mu.Lock()
	g.lastErr = err
	g.mu.Unlock()
	g.r.report(g, registry.StateRetrying, err, false)
}

// retry records a failed attempt to publish, logs it with the wait before
// the next one, and waits; false means ctx ended. Every attempt is logged:
// the backoff caps the rate (one line per backoffMax at worst), and an
// operator watching a registration that does not come back wants to see
// it trying, and when it tries next.
func (g *registration) retry(ctx context.Context, bo *backoff.Backoff, err error) bool {
	wait := bo.Next()
	g.mu.Lock()
	g.failures++
	n := g.failures
	g.mu.Unlock()
	g.r.logWarn("msg", "registration attempt failed", "key", g.key, "failures", n, "retry_in", wait, "err", err)
	g.failed(err)
	return backoff.Sleep(ctx, wait)
}

// run publishes the record, then holds it: whenever it is lost it is
// published again, with backoff, until ctx ends.
func (g *registration) run(ctx context.Context) {
	defer close(g.done)
	bo := backoff.New(g.r.cfg.backoffMin, g.r.cfg.backoffMax)
	for {
		rev, err := g.publish(ctx)
		if err == nil {
			g.r.report(g, registry.StateRegistered, nil, false)
			g.ready <- nil
			g.keep(ctx, rev)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, registry.ErrConflict) {
			// Refused outright on the first claim: the caller decides.
			g.ready <- err
			return
		}
		if !g.retry(ctx, bo, err) {
			return
		}
	}
}

// keep holds the published record until ctx ends, publishing it again
// every time it is lost. rev is the revision of the last write.
func (g *registration) keep(ctx context.Context, rev int64) {
	bo := backoff.New(g.r.cfg.backoffMin, g.r.cfg.backoffMax)
	for {
		reason := g.hold(ctx, rev)
		if ctx.Err() != nil || g.withdrawing.Load() {
			return
		}
		if errors.Is(reason, errSuperseded) {
			g.r.logWarn("msg", "registration superseded, not re-registering", "key", g.key, "err", reason)
			g.mu.Lock()
			g.lastErr = reason
			g.mu.Unlock()
			g.r.report(g, registry.StateWithdrawn, reason, false)
			return
		}
		g.r.logWarn("msg", "registration lost, re-registering", "key", g.key, "err", reason)
		g.failed(reason)
		bo.Reset()
		for {
			var err error
			if rev, err = g.publish(ctx); err == nil {
				break
			}
			if ctx.Err() != nil || g.withdrawing.Load() {
				return
			}
			// A conflict here is retried too: the other holder may be gone
			// when its lease expires, and the record is ours to restore.
			if !g.retry(ctx, bo, err) {
				return
			}
		}
		g.r.logWarn("msg", "re-registered", "key", g.key)
		g.r.report(g, registry.StateRegistered, nil, true)
	}
}

// hold runs the keepalive of the current lease and watches our own key.
// It returns why the record was lost, or nil when ctx ends.
func (g *registration) hold(ctx context.Context, rev int64) error {
	lease := g.currentLease()
	// WithRequireLeader: a member cut off from the leader cannot keep our
	// lease alive, so we want to hear about it now, not after the TTL.
	hctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ka, err := g.r.cli.KeepAlive(hctx, lease)
	if err != nil {
		return fmt.Errorf("keepalive of lease %x: %w", int64(lease), err)
	}
	// Watching our own key reacts at once to a revoked lease or a deleted
	// key, where the keepalive would only notice at its next tick. The
	// watch is an early warning, not the authority: if it breaks we look at
	// the key and watch again, and leave liveness to the keepalive.
	var wch clientv3.WatchChan
	pending := watchAsync(hctx, g.r.cli, g.key, clientv3.WithRev(rev+1))
	defer func() {
		cancel()
		if pending != nil {
			<-pending
		}
	}()
	var rewatch <-chan time.Time
	bo := backoff.New(g.r.cfg.backoffMin, g.r.cfg.backoffMax)
	for {
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-ka:
			if !ok {
				return fmt.Errorf("keepalive of lease %x ended (expired, revoked, no leader, or etcd unreachable for a TTL)", int64(lease))
			}
		case wch = <-pending:
			pending = nil
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				wch, rewatch = nil, time.After(bo.Next())
				continue
			}
			for _, ev := range wr.Events {
				if ev.Type == mvccpb.DELETE {
					return errors.New("record deleted (lease revoked or key removed)")
				}
				if err := g.stillOurs(lease, ev.Kv.Lease, ev.Kv.Value); err != nil {
					return err
				}
			}
		case <-rewatch:
			rctx, rcancel := context.WithTimeout(hctx, g.r.cfg.requestTimeout)
			resp, err := g.r.cli.Get(rctx, g.key)
			rcancel()
			if err != nil {
				rewatch = time.After(bo.Next())
				continue
			}
			if len(resp.Kvs) == 0 {
				return errors.New("record deleted (lease revoked or key removed)")
			}
			if err := g.stillOurs(lease, resp.Kvs[0].Lease, resp.Kvs[0].Value); err != nil {
				return err
			}
			bo.Reset()
			rewatch = nil
			pending = watchAsync(hctx, g.r.cli, g.key, clientv3.WithRev(resp.Header.Revision+1))
		}
	}
}

// stillOurs checks a write seen on our key: nil if it is under our lease.
func (g *registration) stillOurs(lease clientv3.LeaseID, holder int64, value []byte) error {
	if clientv3.LeaseID(holder) == lease {
		return nil
	}
	if holder == 0 {
		// Not a newer run of ours (that would hold a lease): take it back.
		return errors.New("record overwritten without a lease")
	}
	if other, err := registry.DecodeRecord(value); err == nil && other.HostPort() == g.inst.HostPort() {
		return fmt.Errorf("%w (lease %x)", errSuperseded, holder)
	}
	return fmt.Errorf("record overwritten under lease %x", holder)
}

// publish grants a fresh lease and claims the key with it. It returns the
// revision of the write. A key held by a live record of another address is
// refused with registry.ErrConflict; our own old record, an unreadable one
// or one of the same address (a previous run of this process) is replaced.
func (g *registration) publish(ctx context.Context) (int64, error) {
	cli := g.r.cli
	// Each request may go to a member that lost its leader (cut off, or
	// mid-election): it is tried once per endpoint, so on each member, before
	// the whole claim counts as failed (Registry.tryLeader). With one
	// endpoint that is one try: the registrar's own backoff retries.
	tries := len(cli.Endpoints())
	call := func(req func(context.Context) error) error {
		return g.r.tryLeader(ctx, tries, g.r.cfg.requestTimeout, req)
	}
	var grant *clientv3.LeaseGrantResponse
	err := call(func(ctx context.Context) (err error) {
		grant, err = cli.Grant(ctx, g.r.cfg.ttlSeconds())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("etcd: grant lease for %s: %w", g.key, err)
	}
	lease := grant.ID
	used := false
	defer func() {
		if !used {
			// An unused lease would linger for a TTL; tidy it, best effort.
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.r.cfg.requestTimeout)
			cli.Revoke(tctx, lease)
			cancel()
		}
	}()
	put := clientv3.OpPut(g.key, g.val, clientv3.WithLease(lease))
	txn := func(cmp clientv3.Cmp, orElse ...clientv3.Op) (resp *clientv3.TxnResponse, err error) {
		err = call(func(ctx context.Context) (err error) {
			resp, err = cli.Txn(ctx).If(cmp).Then(put).Else(orElse...).Commit()
			return err
		})
		return resp, err
	}
	// Three rounds cover a key that changes between our read and our write;
	// more would mean someone is fighting us, which the caller should see.
	for range 3 {
		resp, err := txn(clientv3.Compare(clientv3.CreateRevision(g.key), "=", 0), clientv3.OpGet(g.key))
		if err != nil {
			return 0, fmt.Errorf("etcd: put %s: %w", g.key, err)
		}
		if resp.Succeeded {
			used = true
			g.setLease(lease)
			return resp.Header.Revision, nil
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // deleted between the compare and the get
		}
		if err := g.mayReplace(kvs[0].Lease, kvs[0].Value); err != nil {
			return 0, err
		}
		resp, err = txn(clientv3.Compare(clientv3.ModRevision(g.key), "=", kvs[0].ModRevision))
		if err != nil {
			return 0, fmt.Errorf("etcd: put %s: %w", g.key, err)
		}
		if resp.Succeeded {
			used = true
			g.setLease(lease)
			return resp.Header.Revision, nil
		}
	}
	return 0, fmt.Errorf("etcd: %s kept changing while being claimed", g.key)
}

// mayReplace decides whether an existing record at our key may be
// overwritten.
func (g *registration) mayReplace(holder int64, value []byte) error {
	if clientv3.LeaseID(holder) == g.currentLease() && holder != 0 {
		return nil // our own record from before a lease loss
	}
	old, err := registry.DecodeRecord(value)
	if err != nil {
		g.r.logWarn("msg", "replacing unreadable record", "key", g.key, "err", err)
		return nil
	}
	if holder == 0 {
		// No lease: not a registrar's record (they always have one), so no
		// live process holds it, and it would never expire — waiting for
		// it would keep this instance out of discovery for good, and
		// instancers do not route to it. Take the key over, loudly.
		g.r.logWarn("msg", "replacing a record without a lease", "key", g.key, "its_address", old.HostPort(), "ours", g.inst.HostPort())
		return nil
	}
	if old.HostPort() == g.inst.HostPort() {
		return nil // a previous run on this address; it cannot still be serving
	}
	return fmt.Errorf("%w: %s is held by %s (lease %x), refused for %s",
		registry.ErrConflict, g.key, old.HostPort(), holder, g.inst.HostPort())
}

func (g *registration) setLease(id clientv3.LeaseID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lease = id
}

// watchAsync runs cli.Watch in a goroutine and hands over its channel.
// Watch itself blocks until its gRPC stream is up, which is for as long as
// etcd is unreachable, and the caller must keep serving its other channels
// meanwhile. The goroutine ends when Watch returns, at the latest when ctx
// ends; the caller cancels ctx and then receives from the returned channel
// if it has not already.
func watchAsync(ctx context.Context, cli *clientv3.Client, key string, opts ...clientv3.OpOption) <-chan clientv3.WatchChan {
	out := make(chan clientv3.WatchChan, 1)
	go func() { out <- cli.Watch(ctx, key, opts...) }()
	return out
}
