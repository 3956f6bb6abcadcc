package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/backoff"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/keeper"
)

// registration keeps one instance published: its Keeper runs the
// re-register loop over publish and hold. The Registry starts and stops
// the Keeper.
type registration struct {
	r    *Registry
	inst registry.Instance
	key  string
	val  string
	k    *keeper.Keeper

	// rev is the revision of the last write; only the Keeper's goroutine
	// uses it.
	rev int64

	mu    sync.Mutex
	lease clientv3.LeaseID // lease that holds, or last held, our key
}

func newRegistration(r *Registry, inst registry.Instance, key, val string) *registration {
	g := &registration{r: r, inst: inst, key: key, val: val}
	g.k = keeper.New(g, keeper.Config{
		BackoffMin: r.cfg.backoffMin, BackoffMax: r.cfg.backoffMax,
		Logger: r.cfg.logger, Name: []any{"key", key},
		Report:        func(s registry.State, err error, again bool) { r.report(g, s, err, again) },
		LossIsFailure: true, // a lost lease took the record with it
	})
	return g
}

func (g *registration) currentLease() clientv3.LeaseID {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lease
}

// Publish implements keeper.Record: a fresh lease and record every time.
func (g *registration) Publish(ctx context.Context, _ bool) (bool, error) {
	rev, err := g.publish(ctx)
	if err != nil {
		return false, err
	}
	g.rev = rev
	return true, nil
}

// Hold implements keeper.Record.
func (g *registration) Hold(ctx context.Context) error { return g.hold(ctx, g.rev) }

// hold runs the keepalive of the current lease and watches our own key.
// It returns why the record was lost, or nil when ctx ends.
func (g *registration) hold(ctx context.Context, rev int64) error {
	lease := g.currentLease()
	// WithRequireLeader: a member cut off from the leader cannot keep our
	// lease alive, so we want to hear about it now, not after the TTL.
	hctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	cli, err := g.r.client.get(hctx) // made: publish used it
	if err != nil {
		return err
	}
	ka, err := cli.KeepAlive(hctx, lease)
	if err != nil {
		return fmt.Errorf("keepalive of lease %x: %w", int64(lease), err)
	}
	// Watching our own key reacts at once to a revoked lease or a deleted
	// key, where the keepalive would only notice at its next tick. The
	// watch is an early warning, not the authority: if it breaks we look at
	// the key and watch again, and leave liveness to the keepalive.
	var wch clientv3.WatchChan
	pending := watchAsync(hctx, cli, g.key, clientv3.WithRev(rev+1))
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
			resp, err := cli.Get(rctx, g.key)
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
			pending = watchAsync(hctx, cli, g.key, clientv3.WithRev(resp.Header.Revision+1))
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
		return fmt.Errorf("%w (lease %x)", keeper.ErrSuperseded, holder)
	}
	return fmt.Errorf("record overwritten under lease %x", holder)
}

// publish grants a fresh lease and claims the key with it. It returns the
// revision of the write. A key held by a live record of another address is
// refused with registry.ErrConflict; our own old record, an unreadable one
// or one of the same address (a previous run of this process) is replaced.
func (g *registration) publish(ctx context.Context) (int64, error) {
	// With credentials the client may still be authenticating: wait for
	// it as long as for one request, so a down etcd fails this attempt
	// (and the Keeper retries and reports it) as it would without them.
	cli, err := g.r.client.getWithin(ctx, g.r.cfg.requestTimeout)
	if err != nil {
		return 0, err // says that the client is not there yet, and why
	}
	// Each request may go to a member that lost its leader (cut off, or
	// mid-election): it is tried once per endpoint, so on each member, before
	// the whole claim counts as failed (Registry.tryLeader). With one
	// endpoint that is one try: the registrar's own backoff retries.
	tries := len(cli.Endpoints())
	call := func(req func(context.Context) error) error {
		return g.r.tryLeader(ctx, tries, g.r.cfg.requestTimeout, req)
	}
	var grant *clientv3.LeaseGrantResponse
	err = call(func(ctx context.Context) (err error) {
		grant, err = cli.Grant(ctx, g.r.cfg.ttlSeconds())
		return err
	})
	if err != nil {
		// The first request of a claim: where a connection that never
		// came up shows, as "context deadline exceeded" and nothing more.
		return 0, fmt.Errorf("etcd: grant lease for %s: %w", g.key, g.r.explain(cli, err))
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
		resp, err := txn(clientv3.Compare(clientv3.CreateRevision(g.key), "=", 0))
		if err != nil {
			return 0, fmt.Errorf("etcd: put %s: %w", g.key, g.r.explain(cli, err))
		}
		if resp.Succeeded {
			used = true
			g.setLease(lease)
			return resp.Header.Revision, nil
		}
		// The key is taken: read what holds it. A read of its own, not an
		// else-branch of the claim: that cost the claim about 20 µs on
		// every registration, and a taken key is the rare case (a restart,
		// a lost lease, a conflict); the compare on its mod revision below
		// still catches a change between the two.
		var got *clientv3.GetResponse
		err = call(func(ctx context.Context) (err error) {
			got, err = cli.Get(ctx, g.key)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("etcd: read %s: %w", g.key, g.r.explain(cli, err))
		}
		kvs := got.Kvs
		if len(kvs) == 0 {
			continue // deleted between the compare and the get
		}
		if err := g.mayReplace(kvs[0].Lease, kvs[0].Value); err != nil {
			return 0, err
		}
		resp, err = txn(clientv3.Compare(clientv3.ModRevision(g.key), "=", kvs[0].ModRevision))
		if err != nil {
			return 0, fmt.Errorf("etcd: put %s: %w", g.key, g.r.explain(cli, err))
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
