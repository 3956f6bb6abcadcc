package balancer

import (
	"context"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// located makes targets with a zone and a region ("region" metadata, or
// "dc" as the Consul instancer sets it when the region is prefixed dc:).
func located(t *testing.T, d *outlier.Detector, places ...[2]string) []*Target {
	t.Helper()
	var ts []*Target
	for i, p := range places {
		inst := registry.Instance{ID: "svc-" + string(rune('a'+i)), Name: "svc",
			Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 11000+i)}, Zone: p[0]}
		if len(p[1]) > 3 && p[1][:3] == "dc:" {
			inst.Metadata = map[string]string{"dc": p[1][3:]}
		} else {
			inst.Metadata = map[string]string{"region": p[1]}
		}
		opts := []TargetOption{WithBreaker(d.NewBreaker())}
		tg, err := NewTarget(inst.String(), nop, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	return ts
}

// picks counts where 300 picks land, by target index.
func picks(t *testing.T, b Balancer, ts []*Target) map[int]int {
	t.Helper()
	got := map[int]int{}
	for range 300 {
		p, err := b.Pick(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, tg := range ts {
			if tg == p {
				got[i]++
			}
		}
	}
	return got
}

// Locality order zone → region → any: the zone while it has enough
// healthy instances, then the region, then everything; and back.
func TestZoneAware_ZoneThenRegionThenAny(t *testing.T) {
	d := must(outlier.New(outlier.WithCooldown(time.Hour, time.Hour)))
	ts := located(t, d,
		[2]string{"eu-1a", "eu"}, // 0: our zone
		[2]string{"eu-1b", "eu"}, // 1: our region
		[2]string{"eu-1c", "eu"}, // 2: our region
		[2]string{"us-1a", "us"}, // 3: elsewhere
	)
	b := must(NewZoneAware("eu-1a", WithRegion("eu", 2)))
	b.Update(ts)
	if got := picks(t, b, ts); got[0] != 300 {
		t.Fatalf("zone healthy: picks %v, want all on 0", got)
	}
	eject(t, ts[0])
	if got := picks(t, b, ts); got[0] != 0 || got[3] != 0 || got[1] == 0 || got[2] == 0 {
		t.Fatalf("zone down, region has 2 healthy: picks %v, want 1 and 2 only", got)
	}
	eject(t, ts[1])
	if got := picks(t, b, ts); got[3] == 0 {
		t.Fatalf("region below its threshold (1 healthy < 2): picks %v, want spill-over to 3", got)
	}
	// Back: a fresh zone instance takes all traffic again.
	ts2 := append(located(t, d, [2]string{"eu-1a", "eu"}), ts[1:]...)
	b.Update(ts2)
	if got := picks(t, b, ts2); got[0] != 300 {
		t.Fatalf("zone back: picks %v, want all on the zone instance", got)
	}
}

// The region of an instance found through Consul is its datacenter.
func TestZoneAware_RegionIsTheConsulDatacenter(t *testing.T) {
	d := must(outlier.New())
	ts := located(t, d, [2]string{"z9", "dc:dc1"}, [2]string{"z9", "dc:dc2"})
	b := must(NewZoneAware("z1", WithRegion("dc1", 1)))
	b.Update(ts)
	if got := picks(t, b, ts); got[0] != 300 {
		t.Fatalf("picks %v, want all in dc1", got)
	}
}

func TestWithRegion_RefusesBadValues(t *testing.T) {
	if _, err := NewZoneAware("a", WithRegion("", 1)); err == nil {
		t.Error("empty region accepted")
	}
	if _, err := NewZoneAware("a", WithRegion("eu", 0)); err == nil {
		t.Error("threshold 0 accepted")
	}
}
