package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/registry"
)

func TestClient_ConsistentHashSendsAKeyToOneBackend(t *testing.T) {
	var insts []registry.Instance
	for range 4 {
		insts = append(insts, startBackend(t, "", nil).inst)
	}
	c := newClient(t, newRegistry(t, insts...), WithBalancer(must(balancer.NewConsistentHash())))
	for k := range 20 {
		var first string
		for range 5 {
			got, err := Call[echoReq, echoResp](context.Background(), c, "GET", "/", echoReq{}, HashKey(fmt.Sprint("cart-", k)))
			if err != nil {
				t.Fatal(err)
			}
			if first == "" {
				first = got.From
			} else if got.From != first {
				t.Fatalf("key %d served by %s and %s", k, first, got.From)
			}
		}
	}
}

func TestClient_ZoneAwareKeepsAllTrafficLocalWhileLocalIsHealthy(t *testing.T) {
	var local, remote []*backend
	var insts []registry.Instance
	for _, z := range []string{"a", "a", "b", "b", "b"} {
		b := startBackend(t, z, nil)
		insts = append(insts, b.inst)
		if z == "a" {
			local = append(local, b)
		} else {
			remote = append(remote, b)
		}
	}
	c := newClient(t, newRegistry(t, insts...), WithBalancer(must(balancer.NewZoneAware("a"))))
	errs, lat := load(4, 400, 10*time.Second, get(c))
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	for _, b := range remote {
		if h := b.hits.Load(); h != 0 {
			t.Fatalf("remote backend got %d of %d requests", h, len(lat))
		}
	}
	for _, b := range local {
		if b.hits.Load() == 0 {
			t.Fatal("a local backend got nothing")
		}
	}
}

func TestClient_P2CSendsLessTrafficToASlowInstanceThanRoundRobin(t *testing.T) {
	share := func(bal balancer.Balancer) float64 {
		slow, a, b := startBackend(t, "", nil), startBackend(t, "", nil), startBackend(t, "", nil)
		// 50 ms, far above what a loaded machine's stalls add to the
		// fast instances, so the difference P2C sees is the delay's.
		slow.delay.Store(int64(50 * time.Millisecond))
		c := newClient(t, newRegistry(t, slow.inst, a.inst, b.inst), WithBalancer(bal))
		errs, lat := load(8, 600, 20*time.Second, get(c))
		if len(errs) > 0 {
			t.Fatal(errs[0])
		}
		return float64(slow.hits.Load()) / float64(len(lat))
	}
	rr, p2c := share(balancer.NewRoundRobin()), share(balancer.NewP2C())
	t.Logf("slow instance's share: round robin %.1f%%, P2C %.1f%%", 100*rr, 100*p2c)
	if p2c > rr/2 {
		t.Fatalf("P2C sent %.1f%% to the slow instance, round robin %.1f%%: want less than half", 100*p2c, 100*rr)
	}
}
