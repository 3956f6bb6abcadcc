package balancer

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
)

// An ejected target's share of picks goes to every target still in
// rotation, not all of it to the one after it in the list. Before, the
// balancers scanned on from an ejected target to its successor: of A, B,
// C, D with B and C ejected, round robin, weighted and random sent D three
// picks in four (P2C seven in twelve, when both of its draws were out),
// the kind of skew that overloads the neighbour of a failing instance.
func TestPick_EjectedTargetsShareGoesToEveryTargetInRotation(t *testing.T) {
	const picks = 4000
	for name, mk := range map[string]func() Balancer{
		"round-robin":  func() Balancer { return NewRoundRobin() },
		"weighted":     func() Balancer { return NewWeighted() },
		"random":       func() Balancer { return NewRandom() },
		"p2c":          func() Balancer { return NewP2C() },
		"hash-keyless": func() Balancer { return must(NewConsistentHash()) },
		"zone":         func() Balancer { return must(NewZoneAware("a")) },
	} {
		t.Run(name, func(t *testing.T) {
			d := must(outlier.New(outlier.WithCooldown(time.Hour, time.Hour)))
			ts := targets(t, d, "a", "a", "a", "a")
			eject(t, ts[1])
			eject(t, ts[2])
			b := mk()
			b.Update(ts)
			counts := map[*Target]int{}
			for range picks {
				got, err := b.Pick(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				counts[got]++
			}
			// Half each; a random balancer's share is within ±5 % (over
			// six standard deviations at 4000 picks).
			for _, tg := range []*Target{ts[0], ts[3]} {
				if share := float64(counts[tg]) / picks; share < 0.45 || share > 0.55 {
					t.Errorf("%s got %d of %d picks (A %d, D %d), want about half", tg.ID, counts[tg], picks, counts[ts[0]], counts[ts[3]])
				}
			}
		})
	}
}
