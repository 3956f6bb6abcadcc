package etcdstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// buckets hands out etcd leases, one per bucket of time rather than one per
// write: a lease grant is a raft write and every lease is an object the
// leader tracks and revokes, so a lease per keyed call would double the
// writes of every call and keep one lease per key of the retention. A
// bucket's lease is granted for the retention plus the bucket's width and
// used by every write of the next width; each key then lives between one
// retention and one retention plus a width, and etcd holds about
// retention/width + 1 leases whatever the call rate. Leases are never
// revoked: they expire with their keys, so no goroutine keeps them.
type buckets struct {
	lease clientv3.Lease
	width time.Duration
	now   func() time.Time

	mu   sync.Mutex
	id   clientv3.LeaseID
	ends time.Time // no later than the lease's expiry: measured before the grant
}

// bucketWidth is a tenth of the retention, within 1 s (etcd's lease TTL
// granularity) and 1 min.
func bucketWidth(keep time.Duration) time.Duration {
	return min(max(keep/10, time.Second), time.Minute)
}

// lasting returns a lease that lasts at least until need and at most a
// width (plus etcd's 1 s rounding) longer, granting a new bucket's when
// the current one does not.
func (b *buckets) lasting(ctx context.Context, need time.Time) (clientv3.LeaseID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.id != clientv3.NoLease && !b.ends.Before(need) && !b.ends.After(need.Add(b.width+time.Second)) {
		return b.id, nil
	}
	now := b.now()
	ttl := need.Sub(now) + b.width
	secs := int64((ttl + time.Second - 1) / time.Second) // round up: never shorter than asked
	resp, err := b.lease.Grant(ctx, secs)
	if err != nil {
		return clientv3.NoLease, fmt.Errorf("grant a %ds lease: %w", secs, err)
	}
	b.id, b.ends = resp.ID, now.Add(time.Duration(resp.TTL)*time.Second)
	return b.id, nil
}

// drop forgets id when etcd no longer has it (revoked by hand, data
// restored), so the next write grants another.
func (b *buckets) drop(id clientv3.LeaseID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.id == id {
		b.id = clientv3.NoLease
	}
}
