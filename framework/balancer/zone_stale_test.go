package balancer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
)

// Instances of another zone ejected during a spill, never probed after
// (traffic stayed in the zone), held the panic threshold's slots past
// their cooldowns: a local instance that then failed every call was kept
// in for good and took half the picks. The detector now readmits such
// expired ejections, unprobed, when a failing instance needs their slot.
func TestZoneAware_RemoteEjectionsPastTheirCooldownDoNotHoldTheCap(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	d := must(outlier.New(outlier.WithConsecutiveFailures(1), outlier.WithCooldown(time.Second, time.Second), outlier.WithClock(clock)))
	ts := targets(t, d, "a", "a", "b", "b")
	l1, r1, r2 := ts[0], ts[2], ts[3]
	r1.Breaker().Record(true)
	r2.Breaker().Record(true)
	mu.Lock()
	now = now.Add(time.Hour) // long past their cooldowns; nothing picked them
	mu.Unlock()
	z := must(NewZoneAware("a"))
	z.Update(ts)
	toL1 := 0
	for range 100 {
		got, _ := z.Pick(context.Background(), nil)
		if got == l1 {
			toL1++
			got.Breaker().Record(true) // L1 fails every call
		} else {
			got.Breaker().Record(false)
		}
	}
	t.Logf("L1 %s, R1 %s, R2 %s; %d of 100 picks went to failing L1", l1.Breaker().State(), r1.Breaker().State(), r2.Breaker().State(), toL1)
	if toL1 > 5 {
		t.Fatalf("failing local instance took %d of 100 picks: never ejected while remote ejections past their cooldowns hold the cap", toL1)
	}
	if e, _ := d.Ejected(); e != 2 {
		t.Fatalf("%d ejected, want 2 (the cap)", e)
	}
}
