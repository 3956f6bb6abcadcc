package balancer

import (
	"context"
	"sync/atomic"
)

// maxSchedule bounds the weighted schedule; weights whose sum (after
// dividing by their GCD) exceeds it are scaled down.
const maxSchedule = 4096

// Weighted sends each target a share of requests proportional to its
// registry weight (Instance.EffectiveWeight). It precomputes nginx's smooth
// weighted round-robin sequence on Update, so a pick is one atomic add and
// heavy targets' turns are spread out rather than bunched.
type Weighted struct {
	sched atomic.Pointer[schedule]
	next  atomic.Uint64
}

type schedule struct {
	ts  []*Target
	seq []int32
}

// NewWeighted returns a weighted balancer.
func NewWeighted() *Weighted { return &Weighted{} }

// Update implements Balancer.
func (b *Weighted) Update(ts []*Target) {
	s := &schedule{ts: append([]*Target(nil), ts...)}
	if len(ts) > 0 {
		s.seq = smoothSequence(weights(ts))
	}
	b.sched.Store(s)
}

func weights(ts []*Target) []int {
	w := make([]int, len(ts))
	g, sum := 0, 0
	for i, t := range ts {
		w[i] = t.Instance().EffectiveWeight()
		g = gcd(g, w[i])
	}
	for i := range w {
		w[i] /= g
		sum += w[i]
	}
	if sum > maxSchedule {
		for i := range w {
			w[i] = max(1, w[i]*maxSchedule/sum)
		}
	}
	return w
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// smoothSequence runs nginx's smooth weighted round robin for one full
// cycle: each turn every target gains its weight, the richest is chosen and
// pays the total.
func smoothSequence(w []int) []int32 {
	total := 0
	for _, x := range w {
		total += x
	}
	cur := make([]int, len(w))
	seq := make([]int32, 0, total)
	for range total {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, int32(best))
	}
	return seq
}

// Pick implements Balancer.
func (b *Weighted) Pick(_ context.Context, avoid *Target) (*Target, error) {
	s := b.sched.Load()
	if s == nil || len(s.ts) == 0 {
		return nil, ErrNoEndpoints
	}
	// A target out of rotation passes its turn on to the next turn of
	// the schedule, not to its successor in the list: its share goes to
	// the others by their weights. Bounded: a heavy target's turns come in
	// runs, and when most targets are out the scan below is cheaper.
	n := uint64(len(s.seq))
	i := int(s.seq[(b.next.Add(1)-1)%n])
	for range min(len(s.seq), 2*len(s.ts)+maxDraws) {
		if t := s.ts[i]; t != avoid && t.Allow() {
			return t, nil
		}
		i = int(s.seq[(b.next.Add(1)-1)%n])
	}
	return scan(s.ts, i, avoid), nil
}
