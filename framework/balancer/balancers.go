package balancer

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/kit/sd/lb"
)

// scan returns the first target from start on (wrapping) that is not avoid
// and may take traffic. If none may, it returns avoid when avoid may, and
// otherwise ts[start] (or its successor when that is avoid): ejection never
// leaves a caller with nothing while targets exist.
func scan(ts []*Target, start int, avoid *Target) *Target {
	n := len(ts)
	for i := range n {
		if t := ts[(start+i)%n]; t != avoid && t.Allow() {
			return t
		}
	}
	if avoid != nil && slices.Contains(ts, avoid) && avoid.Allow() {
		return avoid
	}
	if t := ts[start%n]; t != avoid || n == 1 {
		return t
	}
	return ts[(start+1)%n]
}

// maxDraws bounds the random draws of a pick that meets targets out of
// rotation before it scans.
const maxDraws = 8

// randomPick returns a random target that is not avoid and may take
// traffic, drawing again past one that is out; after maxDraws misses (most
// targets out) it scans from a random start. Drawing again, rather than
// scanning on from the miss, spreads an ejected target's share over every
// target in rotation instead of handing all of it to its successor.
func randomPick(ts []*Target, avoid *Target) *Target {
	n := len(ts)
	for range min(n, maxDraws) {
		if t := ts[rand.IntN(n)]; t != avoid && t.Allow() {
			return t
		}
	}
	return scan(ts, rand.IntN(n), avoid)
}

// set holds an immutable target slice for lock-free reads. It keeps the
// slice Update was given without copying it: Update's contract is that the
// caller never modifies it after (the endpointer makes a new one per
// change), so a change costs no O(N) clone here.
type set struct{ p atomic.Pointer[[]*Target] }

func (s *set) store(ts []*Target) { s.p.Store(&ts) }

func (s *set) load() []*Target {
	if p := s.p.Load(); p != nil {
		return *p
	}
	return nil
}

// RoundRobin sends requests to targets in turn.
type RoundRobin struct {
	set
	next atomic.Uint64
}

// NewRoundRobin returns a round-robin balancer.
func NewRoundRobin() *RoundRobin { return &RoundRobin{} }

// Update implements Balancer.
func (b *RoundRobin) Update(ts []*Target) { b.store(ts) }

// Pick implements Balancer.
func (b *RoundRobin) Pick(_ context.Context, avoid *Target) (*Target, error) {
	ts := b.load()
	n := uint64(len(ts))
	if n == 0 {
		return nil, ErrNoEndpoints
	}
	// A target out of rotation passes its turn on through the shared
	// counter, so the next turn is consumed too: the turns of an ejected
	// target spread over the others instead of all going to its successor.
	start := int((b.next.Add(1) - 1) % n)
	for i, k := start, uint64(0); k < n; k++ {
		if t := ts[i]; t != avoid && t.Allow() {
			return t, nil
		}
		i = int((b.next.Add(1) - 1) % n)
	}
	return scan(ts, start, avoid), nil
}

// Random sends each request to a uniformly random target. It uses
// math/rand/v2's global source, which is safe for concurrent use, unlike
// go-kit's lb.NewRandom that shares one *rand.Rand.
type Random struct{ set }

// NewRandom returns a random balancer.
func NewRandom() *Random { return &Random{} }

// Update implements Balancer.
func (b *Random) Update(ts []*Target) { b.store(ts) }

// Pick implements Balancer.
func (b *Random) Pick(_ context.Context, avoid *Target) (*Target, error) {
	ts := b.load()
	if len(ts) == 0 {
		return nil, ErrNoEndpoints
	}
	return randomPick(ts, avoid), nil
}

// P2C picks two random targets and sends the request to the less loaded,
// load being latency EWMA × (in-flight + 1) as in Finagle's and Linkerd's
// "peak EWMA". Slow or busy instances get less traffic without any one
// instance being flooded, as "always least loaded" would do.
type P2C struct{ set }

// NewP2C returns a power-of-two-choices balancer.
func NewP2C() *P2C { return &P2C{} }

// Update implements Balancer.
func (b *P2C) Update(ts []*Target) { b.store(ts) }

func cost(t *Target) float64 {
	// The 1µs floor makes in-flight count decide between targets that have
	// no latency sample yet.
	return (float64(t.Latency()) + 1e3) * float64(t.InFlight()+1)
}

// Pick implements Balancer.
func (b *P2C) Pick(_ context.Context, avoid *Target) (*Target, error) {
	ts := b.load()
	n := len(ts)
	switch n {
	case 0:
		return nil, ErrNoEndpoints
	case 1:
		return scan(ts, 0, avoid), nil
	}
	// Both draws out of rotation: draw a new pair rather than scan on
	// from the first, which gave an ejected target's share to its
	// successor in the list.
	for range maxDraws {
		i := rand.IntN(n)
		j := rand.IntN(n - 1)
		if j >= i {
			j++
		}
		a, c := ts[i], ts[j]
		okA := a != avoid && !a.Ejected()
		okC := c != avoid && !c.Ejected()
		switch {
		case okA && okC:
			if cost(c) < cost(a) {
				a = c
			}
		case okC:
			a = c
		case !okA:
			continue
		}
		if a.Allow() {
			return a, nil
		}
	}
	return randomPick(ts, avoid), nil
}

// GoKit adapts a Balancer to go-kit's lb.Balancer, so lb.Retry or any
// go-kit middleware can sit on top. The endpoint it returns goes through
// Target.Call, keeping load and health figures. go-kit's interface has no
// context at pick time, so a ConsistentHash balancer behind it sees no key.
func GoKit(b Balancer) lb.Balancer { return gokit{b} }

type gokit struct{ b Balancer }

func (g gokit) Endpoint() (endpoint.Endpoint, error) {
	t, err := g.b.Pick(context.Background(), nil)
	if err != nil {
		return nil, err
	}
	return t.Call, nil
}
