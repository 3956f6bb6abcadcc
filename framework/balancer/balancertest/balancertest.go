// Package balancertest is the conformance suite every balancer.Balancer
// passes: the rules the client relies on, checked the same way for
// Warren's balancers and for a third party's (docs/client.md, "Writing a
// balancer"):
//
//	func TestConformance(t *testing.T) {
//		balancertest.Run(t, func() balancer.Balancer { return mylb.New() })
//	}
//
// Run it with -race: one case picks and updates concurrently.
package balancertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

// Run runs the suite as subtests of t; mk returns a new balancer for each
// case. Picks carry a key (balancer.WithKey), so key-based balancers
// spread too, except in the case that checks picks without one.
func Run(t *testing.T, mk func() balancer.Balancer) {
	s := suite{mk: mk}
	t.Run("EmptySetIsErrNoEndpoints", s.empty)
	t.Run("AvoidedTargetIsSkippedWhileOthersMayTakeTraffic", s.avoid)
	t.Run("AvoidedTargetIsReturnedWhenItIsTheOnlyOne", s.avoidOnly)
	t.Run("EjectedTargetsAreSkipped", s.ejected)
	t.Run("HeldTargetsAreSkipped", s.held)
	t.Run("EjectedTargetsRatherThanNothing", s.fallback)
	t.Run("ProbeIsClaimedOnlyOnTheReturnedTarget", s.probe)
	t.Run("ARecoveringTargetGetsOneProbe", s.oneProbe)
	t.Run("PicksWithoutAKey", s.keyless)
	t.Run("PicksOnlyFromTheLatestSet", s.latest)
	t.Run("ConcurrentPicksAndUpdates", s.concurrent)
}

type suite struct{ mk func() balancer.Balancer }

func nop(context.Context, any) (any, error) { return nil, nil }

// targets makes one target per zone given, each with a breaker of d (none
// if d is nil).
func targets(t *testing.T, d *outlier.Detector, zones ...string) []*balancer.Target {
	t.Helper()
	var ts []*balancer.Target
	for i, z := range zones {
		inst := registry.Instance{ID: fmt.Sprintf("svc-%d", i), Name: "svc",
			Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 10000+i)}, Zone: z}
		var opts []balancer.TargetOption
		if d != nil {
			opts = append(opts, balancer.WithBreaker(d.NewBreaker()))
		}
		tg, err := balancer.NewTarget(inst.String(), nop, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	return ts
}

func detector(t *testing.T, opts ...outlier.Option) *outlier.Detector {
	t.Helper()
	d, err := outlier.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// eject records failures on tg until its breaker opens. The state, not
// Ejected: with a short cooldown Ejected is false again a moment later
// (the probe is due), which a loaded machine reached within the loop.
func eject(t *testing.T, tg *balancer.Target) {
	t.Helper()
	for i := 0; i < 100 && tg.Breaker().State() == outlier.Closed; i++ {
		tg.Breaker().Record(true)
	}
	if tg.Breaker().State() != outlier.Open {
		t.Fatalf("%s not ejected after 100 failures (breaker %s)", tg.ID, tg.Breaker().State())
	}
}

func key(i int) context.Context { return balancer.WithKey(context.Background(), fmt.Sprint("k", i)) }

func (s suite) empty(t *testing.T) {
	b := s.mk()
	if _, err := b.Pick(key(0), nil); !errors.Is(err, balancer.ErrNoEndpoints) {
		t.Errorf("Pick before any Update: err = %v, want balancer.ErrNoEndpoints", err)
	}
	b.Update(targets(t, nil, "a"))
	b.Update(nil)
	if _, err := b.Pick(key(0), nil); !errors.Is(err, balancer.ErrNoEndpoints) {
		t.Errorf("Pick after Update(nil): err = %v, want balancer.ErrNoEndpoints", err)
	}
}

func (s suite) avoid(t *testing.T) {
	ts := targets(t, nil, "a", "a", "b")
	b := s.mk()
	b.Update(ts)
	for i := range 300 {
		avoid := ts[i%len(ts)]
		got, err := b.Pick(key(i), avoid)
		if err != nil || got == avoid {
			t.Fatalf("Pick %d avoiding %s = %v, %v; want another target", i, avoid.ID, got, err)
		}
	}
}

func (s suite) avoidOnly(t *testing.T) {
	ts := targets(t, nil, "a")
	b := s.mk()
	b.Update(ts)
	if got, err := b.Pick(key(0), ts[0]); err != nil || got != ts[0] {
		t.Errorf("Pick avoiding the only target = %v, %v; want that target (a retry on it beats none)", got, err)
	}
}

func (s suite) ejected(t *testing.T) {
	// The ejected one at every place in the list: a fallback that takes
	// the first target passed with it second (report j49a).
	for at := range 4 {
		ts := targets(t, detector(t, outlier.WithCooldown(time.Hour, time.Hour)), "a", "a", "a", "a")
		eject(t, ts[at])
		b := s.mk()
		b.Update(ts)
		for i := range 300 {
			if got, err := b.Pick(key(i), nil); err != nil || got == ts[at] {
				t.Fatalf("ejected target at %d: Pick %d = %v, %v; want a target in rotation, never the ejected %s", at, i, got, err, ts[at].ID)
			}
		}
	}
}

// overloaded is an overload answer asking to be left alone for a minute.
type overloaded struct{}

func (overloaded) Error() string               { return "overloaded" }
func (overloaded) OverloadHold() time.Duration { return time.Minute }

func (s suite) held(t *testing.T) {
	ts := targets(t, detector(t), "a", "a", "a")
	ts[0].Endpoint = func(context.Context, any) (any, error) { return nil, overloaded{} }
	if _, err := ts[0].Call(context.Background(), nil); err == nil || !ts[0].Held() {
		t.Fatalf("a target that answered overloaded is not held (err %v)", err)
	}
	b := s.mk()
	b.Update(ts)
	for i := range 300 {
		if got, err := b.Pick(key(i), nil); err != nil || got == ts[0] {
			t.Fatalf("Pick %d = %v, %v; want a free target, never the held %s (it asked to be left alone)", i, got, err, ts[0].ID)
		}
	}
}

// allEjected returns n targets whose breakers are all open. A detector
// keeps one instance in rotation whatever its limit, so one more target is
// made, kept in while the others are ejected, and then released (it left
// the set).
func allEjected(t *testing.T, n int, opts ...outlier.Option) []*balancer.Target {
	t.Helper()
	d := detector(t, append([]outlier.Option{outlier.WithMaxEjectionPercent(100)}, opts...)...)
	zones := make([]string, n+1)
	for i := range zones {
		zones[i] = "a"
	}
	ts := targets(t, d, zones...)
	for _, tg := range ts[:n] {
		eject(t, tg)
	}
	ts[n].Breaker().Release()
	return ts[:n]
}

func (s suite) fallback(t *testing.T) {
	// The detector normally keeps one in; this checks the balancer's own
	// fallback when every target it has is out.
	ts := allEjected(t, 2, outlier.WithCooldown(time.Hour, time.Hour))
	b := s.mk()
	b.Update(ts)
	for i := range 20 {
		if got, err := b.Pick(key(i), nil); err != nil || got == nil {
			t.Fatalf("Pick %d with every target ejected = %v, %v; want one of them rather than nothing", i, got, err)
		}
	}
}

// probe: a breaker whose cooldown has passed lets exactly one probe
// through, claimed by Target.Allow. A balancer that calls Allow on a
// target it does not return claims that probe for nothing: the instance
// then waits a probe timeout before anyone may try it.
func (s suite) probe(t *testing.T) {
	ts := allEjected(t, 4, outlier.WithCooldown(time.Millisecond, time.Millisecond), outlier.WithProbeTimeout(time.Hour))
	time.Sleep(20 * time.Millisecond) // every cooldown over: each breaker has one probe to give
	b := s.mk()
	b.Update(ts)
	got, err := b.Pick(key(0), nil)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	for _, tg := range ts {
		if tg != got && !tg.Allow() {
			t.Errorf("%s's probe was claimed by a Pick that returned %s: call Allow only on the target you return", tg.ID, got.ID)
		}
	}
}

// oneProbe: a target whose cooldown is over gets one call, its probe,
// claimed with Target.Allow; until the probe reports it stays out. A
// balancer that never calls Allow sent it a fifth of the calls (report
// j49a).
func (s suite) oneProbe(t *testing.T) {
	ts := targets(t, detector(t, outlier.WithCooldown(time.Millisecond, time.Millisecond), outlier.WithProbeTimeout(time.Hour)), "a", "a", "a", "a")
	eject(t, ts[2])
	time.Sleep(20 * time.Millisecond) // its cooldown over: one probe to give
	b := s.mk()
	b.Update(ts)
	n := 0
	for i := range 300 {
		got, err := b.Pick(key(i), nil)
		if err != nil {
			t.Fatalf("Pick %d: %v", i, err)
		}
		if got == ts[2] {
			n++
		}
	}
	if n > 1 {
		t.Fatalf("the recovering target was picked %d times in 300 with three others healthy; want its one probe at most (call Allow on the target you return, and skip it when Allow says no)", n)
	}
}

// keyless: most calls carry no key (the client sets one only for
// hash-keyed methods); every balancer must pick for them.
func (s suite) keyless(t *testing.T) {
	ts := targets(t, nil, "a", "b", "a")
	b := s.mk()
	b.Update(ts)
	for i := range 50 {
		if got, err := b.Pick(context.Background(), nil); err != nil || got == nil {
			t.Fatalf("Pick %d without a key = %v, %v; want a target", i, got, err)
		}
	}
}

func (s suite) latest(t *testing.T) {
	old, next := targets(t, nil, "a", "a", "a"), targets(t, nil, "a", "b")
	b := s.mk()
	b.Update(old)
	b.Update(next)
	for i := range 200 {
		got, err := b.Pick(key(i), nil)
		if err != nil || (got != next[0] && got != next[1]) {
			t.Fatalf("Pick %d after Update to a new set = %v, %v; want a target of the new set", i, got, err)
		}
	}
}

func (s suite) concurrent(t *testing.T) {
	b := s.mk()
	a := targets(t, detector(t), "a", "a", "b", "b")
	b.Update(a)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last *balancer.Target
			for i := 0; i < 20000 && ctx.Err() == nil; i++ {
				got, err := b.Pick(balancer.WithKey(ctx, fmt.Sprint(g, i%7)), last)
				if err != nil {
					errs <- err
					return
				}
				_, _ = got.Call(ctx, nil)
				last = got
			}
		}()
	}
	for i := 0; i < 200 && ctx.Err() == nil; i++ {
		b.Update(a[:1+i%4])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Pick during concurrent Updates: %v (every set had a target)", err)
	}
}
