package balancer_test

import (
	"testing"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/balancer/balancertest"
)

// Every balancer of this package passes the suite a third party's runs.
func TestConformance(t *testing.T) {
	for name, mk := range map[string]func() balancer.Balancer{
		"round-robin": func() balancer.Balancer { return balancer.NewRoundRobin() },
		"random":      func() balancer.Balancer { return balancer.NewRandom() },
		"p2c":         func() balancer.Balancer { return balancer.NewP2C() },
		"hash": func() balancer.Balancer {
			b, err := balancer.NewConsistentHash()
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"zone": func() balancer.Balancer {
			b, err := balancer.NewZoneAware("a")
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"region": func() balancer.Balancer {
			b, err := balancer.NewZoneAware("a", balancer.WithRegion("r1", 1))
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		"weighted": func() balancer.Balancer { return balancer.NewWeighted() },
	} {
		t.Run(name, func(t *testing.T) { balancertest.Run(t, mk) })
	}
}
