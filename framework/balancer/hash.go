package balancer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
)

type keyCtx struct{}

// WithKey returns ctx carrying the key a ConsistentHash balancer routes by.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// KeyFromContext returns the key set by WithKey.
func KeyFromContext(ctx context.Context) (string, bool) {
	k, ok := ctx.Value(keyCtx{}).(string)
	return k, ok
}

// ConsistentHash sends every request with the same key to the same target,
// using a hash ring with virtual nodes placed by instance ID: when one of N
// instances leaves, only the keys it owned (~1/N) move, and they spread over
// the others. Requests without a key go to a random target. When the
// owner is ejected or to be avoided, the next target clockwise takes the key.
type ConsistentHash struct {
	ring   atomic.Pointer[ring]
	vnodes int
	key    func(context.Context) (string, bool)
}

type ring struct {
	ts     []*Target
	points []uint64
	owner  []int32
}

// HashOption configures ConsistentHash. An option given a bad value makes
// NewConsistentHash fail with an error that names it.
type HashOption func(*ConsistentHash) error

// WithVirtualNodes sets ring points per instance (default 160): more
// points, evener spread, bigger ring.
func WithVirtualNodes(n int) HashOption {
	return func(h *ConsistentHash) error {
		if n < 1 {
			return fmt.Errorf("balancer.WithVirtualNodes(%d): at least 1", n)
		}
		h.vnodes = n
		return nil
	}
}

// WithKeyFunc sets where the key comes from (default KeyFromContext).
func WithKeyFunc(f func(context.Context) (string, bool)) HashOption {
	return func(h *ConsistentHash) error {
		if f == nil {
			return errors.New("balancer.WithKeyFunc(nil)")
		}
		h.key = f
		return nil
	}
}

// NewConsistentHash returns a consistent-hashing balancer, or the first
// option's complaint about its value.
func NewConsistentHash(opts ...HashOption) (*ConsistentHash, error) {
	h := &ConsistentHash{vnodes: 160, key: KeyFromContext}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("balancer: nil HashOption")
		}
		if err := o(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Update implements Balancer.
func (h *ConsistentHash) Update(ts []*Target) {
	r := &ring{ts: slices.Clone(ts)}
	type pt struct {
		h uint64
		o int32
	}
	pts := make([]pt, 0, len(ts)*h.vnodes)
	var buf []byte
	for i, t := range ts {
		id := t.Instance().ID
		for v := range h.vnodes {
			buf = strconv.AppendInt(append(append(buf[:0], id...), '#'), int64(v), 10)
			pts = append(pts, pt{hash(buf), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b pt) int {
		switch {
		case a.h < b.h:
			return -1
		case a.h > b.h:
			return 1
		}
		return int(a.o - b.o)
	})
	r.points = make([]uint64, len(pts))
	r.owner = make([]int32, len(pts))
	for i, p := range pts {
		r.points[i], r.owner[i] = p.h, p.o
	}
	h.ring.Store(r)
}

// Pick implements Balancer.
func (h *ConsistentHash) Pick(ctx context.Context, avoid *Target) (*Target, error) {
	r := h.ring.Load()
	if r == nil || len(r.ts) == 0 {
		return nil, ErrNoEndpoints
	}
	key, ok := h.key(ctx)
	if !ok {
		return randomPick(r.ts, avoid), nil
	}
	kh := hash([]byte(key))
	start, _ := slices.BinarySearch(r.points, kh)
	n := len(r.points)
	for i := range n {
		t := r.ts[r.owner[(start+i)%n]]
		if t != avoid && t.Allow() {
			return t, nil
		}
	}
	return scan(r.ts, int(r.owner[start%n]), avoid), nil
}

// hash is 64-bit FNV-1a finished with splitmix64's mixer: FNV alone spreads
// near-identical strings ("id#1", "id#2") poorly over the ring. It must be
// the same in every process so all clients agree on the owner of a key.
func hash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
