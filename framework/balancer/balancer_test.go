package balancer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
)

func nop(context.Context, any) (any, error) { return nil, nil }

type closeCounter struct {
	mu sync.Mutex
	n  int
}

func (c *closeCounter) Close() error { c.mu.Lock(); c.n++; c.mu.Unlock(); return nil }
func (c *closeCounter) count() int   { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

// targets makes n targets in zone z (index i gets port 10000+i).
func targets(t *testing.T, d *outlier.Detector, zones ...string) []*Target {
	t.Helper()
	var ts []*Target
	for i, z := range zones {
		inst := registry.Instance{ID: fmt.Sprintf("svc-%d", i), Name: "svc", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 10000+i)}, Zone: z}
		var opts []TargetOption
		if d != nil {
			opts = append(opts, WithBreaker(d.NewBreaker()))
		}
		tg, err := NewTarget(inst.String(), nop, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	return ts
}

func all() map[string]func() Balancer {
	return map[string]func() Balancer{
		"round-robin": func() Balancer { return NewRoundRobin() },
		"random":      func() Balancer { return NewRandom() },
		"p2c":         func() Balancer { return NewP2C() },
		"hash":        func() Balancer { return must(NewConsistentHash()) },
		"zone":        func() Balancer { return must(NewZoneAware("a")) },
		"weighted":    func() Balancer { return NewWeighted() },
	}
}

func eject(t *testing.T, tg *Target) {
	t.Helper()
	for range 5 {
		tg.Breaker().Record(true)
	}
	if !tg.Ejected() {
		t.Fatalf("%s not ejected", tg.ID)
	}
}

func TestRoundRobin_SpreadsRequestsEvenly(t *testing.T) {
	ts := targets(t, nil, "", "", "")
	b := NewRoundRobin()
	b.Update(ts)
	counts := map[*Target]int{}
	for range 300 {
		got, _ := b.Pick(context.Background(), nil)
		counts[got]++
	}
	for _, tg := range ts {
		if counts[tg] != 100 {
			t.Errorf("%s got %d of 300", tg.ID, counts[tg])
		}
	}
}

func TestWeighted_SharesFollowInstanceWeights(t *testing.T) {
	var ts []*Target
	for i, w := range []int{100, 300, 50} {
		inst := registry.Instance{ID: fmt.Sprint(i), Name: "s", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 1+i)}, Weight: w}
		tg, err := NewTarget(inst.String(), nop)
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, tg)
	}
	b := NewWeighted()
	b.Update(ts)
	counts := map[*Target]int{}
	for range 900 { // 100 cycles of 2+6+1
		got, _ := b.Pick(context.Background(), nil)
		counts[got]++
	}
	if counts[ts[0]] != 200 || counts[ts[1]] != 600 || counts[ts[2]] != 100 {
		t.Errorf("counts = %d/%d/%d, want 200/600/100", counts[ts[0]], counts[ts[1]], counts[ts[2]])
	}
}

func TestConsistentHash_SameKeyGoesToSameTarget(t *testing.T) {
	ts := targets(t, nil, "", "", "", "")
	b := must(NewConsistentHash())
	b.Update(ts)
	for k := range 100 {
		ctx := WithKey(context.Background(), fmt.Sprint("user-", k))
		first, _ := b.Pick(ctx, nil)
		for range 5 {
			if got, _ := b.Pick(ctx, nil); got != first {
				t.Fatalf("key %d moved from %s to %s", k, first.ID, got.ID)
			}
		}
	}
}

func TestConsistentHash_MovesAtMostOneNthOfKeysWhenOneOfNLeaves(t *testing.T) {
	const n, keys = 5, 10000
	ts := targets(t, nil, "", "", "", "", "")
	b := must(NewConsistentHash())
	b.Update(ts)
	before := make([]string, keys)
	for k := range keys {
		got, _ := b.Pick(WithKey(context.Background(), fmt.Sprint("key-", k)), nil)
		before[k] = got.ID
	}
	b.Update(append(append([]*Target(nil), ts[:2]...), ts[3:]...)) // ts[2] leaves
	moved, owned := 0, 0
	for k := range keys {
		got, _ := b.Pick(WithKey(context.Background(), fmt.Sprint("key-", k)), nil)
		if before[k] == ts[2].ID {
			owned++
		}
		if got.ID != before[k] {
			moved++
			if before[k] != ts[2].ID {
				t.Fatalf("key-%d moved between surviving instances", k)
			}
		}
	}
	limit := keys/n + keys*5/100
	t.Logf("moved %d of %d keys (leaver owned %d), limit %d", moved, keys, owned, limit)
	if moved > limit || moved != owned {
		t.Errorf("moved %d keys, want ≤ %d and == %d owned by the leaver", moved, limit, owned)
	}
}

func TestZoneAware_KeepsAllTrafficLocalWhileLocalIsHealthy(t *testing.T) {
	d := must(outlier.New())
	ts := targets(t, d, "a", "a", "b", "b", "c")
	b := must(NewZoneAware("a"))
	b.Update(ts)
	for range 1000 {
		got, _ := b.Pick(context.Background(), nil)
		if got.Instance().Zone != "a" {
			t.Fatalf("picked %s in zone %s", got.ID, got.Instance().Zone)
		}
	}
}

func TestZoneAware_SpillsToOtherZonesBelowMinHealthy(t *testing.T) {
	d := must(outlier.New(outlier.WithCooldown(time.Hour, time.Hour)))
	ts := targets(t, d, "a", "a", "b", "b", "c")
	b := must(NewZoneAware("a", WithMinHealthy(2)))
	b.Update(ts)
	eject(t, ts[0])
	remote := 0
	for range 100 {
		got, _ := b.Pick(context.Background(), nil)
		if got == ts[0] {
			t.Fatal("picked the ejected local instance")
		}
		if got.Instance().Zone != "a" {
			remote++
		}
	}
	if remote == 0 {
		t.Error("no spill-over with 1 healthy local instance and MinHealthy 2")
	}
}

func TestZoneAware_RetriesAwayFromTheOnlyLocalInstance(t *testing.T) {
	ts := targets(t, nil, "a", "b")
	b := must(NewZoneAware("a"))
	b.Update(ts)
	if got, _ := b.Pick(context.Background(), ts[0]); got != ts[1] {
		t.Errorf("Pick(avoid local) = %s, want the remote instance", got.ID)
	}
}

func TestP2C_SendsLessToTheSlowerAndBusierTarget(t *testing.T) {
	ts := targets(t, nil, "", "")
	ts[0].Endpoint = func(context.Context, any) (any, error) { time.Sleep(5 * time.Millisecond); return nil, nil }
	b := NewP2C()
	b.Update(ts)
	counts := map[*Target]int{}
	for range 200 {
		got, _ := b.Pick(context.Background(), nil)
		counts[got]++
		_, _ = got.Call(context.Background(), nil)
	}
	if counts[ts[0]] >= counts[ts[1]]/4 {
		t.Errorf("slow target got %d, fast %d", counts[ts[0]], counts[ts[1]])
	}
}

func TestTarget_ClosesOnlyAfterInFlightCallsFinish(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	cc := &closeCounter{}
	inst := registry.Instance{ID: "x", Name: "s", Endpoints: []string{"http://127.0.0.1:1"}}
	tg, err := NewTarget(inst.String(), func(context.Context, any) (any, error) {
		close(started)
		<-release
		return "ok", nil
	}, WithCloser(cc))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := tg.Call(context.Background(), nil); done <- err }()
	<-started
	tg.Retire()
	if cc.count() != 0 || tg.Closed() {
		t.Fatal("closed while a call was in flight")
	}
	if _, err := tg.Call(context.Background(), nil); err != ErrRetired {
		t.Fatalf("call after Retire: %v, want ErrRetired", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("in-flight call failed: %v", err)
	}
	if cc.count() != 1 || !tg.Closed() {
		t.Fatalf("closer ran %d times after the last call", cc.count())
	}
	tg.Retire()
	if cc.count() != 1 {
		t.Fatal("second Retire closed again")
	}
}

// A panic in the endpoint that the caller recovers (Warren's transports
// recover handler panics) ends the call: it is no longer in flight, so the
// closer of a target retired meanwhile runs, and P2C does not see the
// instance busy for good.
func TestTarget_PanicInTheEndpointStillEndsTheCall(t *testing.T) {
	cc := &closeCounter{}
	inst := registry.Instance{ID: "x", Name: "s", Endpoints: []string{"http://127.0.0.1:1"}}
	tg, err := NewTarget(inst.String(), func(context.Context, any) (any, error) {
		panic("encoder bug")
	}, WithCloser(cc))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != "encoder bug" {
				t.Errorf("recovered %v, want the endpoint's panic", v)
			}
		}()
		_, _ = tg.Call(context.Background(), nil)
	}()
	if n := tg.InFlight(); n != 0 {
		t.Fatalf("in flight after the recovered panic: %d, want 0", n)
	}
	tg.Retire()
	if cc.count() != 1 || !tg.Closed() {
		t.Fatalf("closer ran %d times after Retire, want 1", cc.count())
	}
}

// overloaded is an overload answer asking to be left alone for hold.
type overloaded struct{ hold time.Duration }

func (e overloaded) Error() string               { return "overloaded" }
func (e overloaded) OverloadHold() time.Duration { return e.hold }

type refusedErr struct{}

func (refusedErr) Error() string { return "429 rate limited" }
func (refusedErr) Refused() bool { return true }

// A rate limit's quick 429 is neither a failure nor a sign of speed: P2C
// must not favour the instance that refuses fastest, and the instance is
// not held (the limit is the caller's, not the instance's load).
func TestTarget_RefusalIsNoLatencySampleNorFailure(t *testing.T) {
	d := must(outlier.New(outlier.WithConsecutiveFailures(2)))
	limiting := targets(t, d, "")[0]
	limiting.Endpoint = func(context.Context, any) (any, error) { return nil, fmt.Errorf("call: %w", refusedErr{}) }
	for range 5 {
		if _, err := limiting.Call(context.Background(), nil); err == nil {
			t.Fatal("want the refusal")
		}
	}
	if limiting.Latency() != 0 {
		t.Fatalf("latency %v recorded from refusals, want none (a quick refusal is not speed)", limiting.Latency())
	}
	if st := limiting.Breaker().State(); st != outlier.Closed || limiting.Held() || !limiting.Allow() {
		t.Fatalf("breaker %s, held %v: a refusal counted as a failure or held the target", st, limiting.Held())
	}
}

func TestTarget_OverloadAnswerHoldsTheTargetWithoutCountingAFailure(t *testing.T) {
	d := must(outlier.New(outlier.WithConsecutiveFailures(2)))
	ts := targets(t, d, "", "")
	shedding, healthy := ts[0], ts[1]
	shedding.Endpoint = func(context.Context, any) (any, error) { return nil, overloaded{time.Minute} }

	for range 5 {
		if _, err := shedding.Call(context.Background(), nil); err == nil {
			t.Fatal("want the overload answer")
		}
	}
	if !shedding.Held() || shedding.Allow() {
		t.Fatal("target that answered overloaded is not held")
	}
	if st := shedding.Breaker().State(); st != outlier.Closed {
		t.Fatalf("breaker %s after 5 overload answers with 2 failures to eject: overload counted as failure", st)
	}
	if shedding.Latency() != 0 {
		t.Fatalf("latency %v recorded from overload answers, want none (a quick refusal is not speed)", shedding.Latency())
	}
	if healthy.Held() {
		t.Fatal("the other target is held")
	}
	for name, mk := range all() {
		if name == "hash" {
			continue // a key's owner is kept; ConsistentHash moves only ejected keys
		}
		b := mk()
		b.Update(ts)
		for range 50 {
			got, err := b.Pick(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got == shedding {
				t.Fatalf("%s picked the held target while another was free", name)
			}
		}
	}
}

func TestTarget_HoldEndsAndAZeroHoldIsAnOrdinaryError(t *testing.T) {
	ts := targets(t, nil, "")
	tg := ts[0]
	holdEnds(t, tg, 20*time.Millisecond)
	tg.Endpoint = func(context.Context, any) (any, error) { return nil, overloaded{0} }
	tg.Call(context.Background(), nil)
	if tg.Held() {
		t.Fatal("held after an error with no hold")
	}
}

// WithEpoch's contract: any past instant serves as the target's epoch (an
// endpointer gives a whole set the one it read at its start). A target
// counting from an hour back holds an overloaded instance for the hold and
// no longer, and keeps and decays its latency, as one counting from its
// making does.
func TestTarget_AnEpochFromThePastKeepsHoldsAndLatency(t *testing.T) {
	inst := registry.Instance{ID: "svc-0", Name: "svc", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 10000)}}
	tg := NewCheckedTarget(inst.String(), nop, WithEpoch(time.Now().Add(-time.Hour)))
	tg.Endpoint = func(context.Context, any) (any, error) { time.Sleep(20 * time.Millisecond); return nil, nil }
	if _, err := tg.Call(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if l := tg.Latency(); l < 10*time.Millisecond || l > time.Second {
		t.Fatalf("latency %s after a 20ms call, want about 20ms", l)
	}
	first := tg.Latency()
	time.Sleep(300 * time.Millisecond)
	if l := tg.Latency(); l >= first || l <= 0 {
		t.Fatalf("idle latency %s, want decayed from %s and above zero", l, first)
	}
	holdEnds(t, tg, 200*time.Millisecond)
}

// holdEnds has tg answer "overloaded, leave me alone for hold" and checks
// that it is held at once and no longer held within 10 s.
func holdEnds(t *testing.T, tg *Target, hold time.Duration) {
	t.Helper()
	tg.Endpoint = func(context.Context, any) (any, error) { return nil, overloaded{hold} }
	tg.Call(context.Background(), nil)
	if !tg.Held() {
		t.Fatal("not held after an overload answer")
	}
	deadline := time.Now().Add(10 * time.Second)
	for tg.Held() {
		if time.Now().After(deadline) {
			t.Fatalf("a %s hold did not end in 10s", hold)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A target's latency estimate decays while it is idle, but not while a
// call is in flight: a hung instance, whose calls never complete, keeps
// looking as slow as it was instead of drifting towards zero and drawing
// every P2C pick.
func TestTarget_LatencyDoesNotDecayWhileCallsAreInFlight(t *testing.T) {
	ts := targets(t, nil, "", "")
	hung, idle := ts[0], ts[1]
	for _, tg := range ts {
		tg.Endpoint = func(context.Context, any) (any, error) { time.Sleep(20 * time.Millisecond); return nil, nil }
		if _, err := tg.Call(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
	}
	before, idleBefore := hung.Latency(), idle.Latency()
	release := make(chan struct{})
	hung.Endpoint = func(context.Context, any) (any, error) { <-release; return nil, nil }
	done := make(chan struct{})
	go func() { defer close(done); _, _ = hung.Call(context.Background(), nil) }()
	for hung.InFlight() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // 1.5 τ: an idle estimate loses ~78%
	got := hung.Latency()
	close(release)
	<-done
	if got < before {
		t.Fatalf("latency with a call in flight decayed from %s to %s", before, got)
	}
	if l := idle.Latency(); l >= idleBefore {
		t.Fatalf("idle target's latency %s did not decay from %s", l, idleBefore)
	}
}

// The avoided target is still taken when it is the only one that may
// take traffic: the others are ejected, and a retry on the instance the
// last attempt failed on beats one on an ejected instance.
func TestPick_AvoidedTargetWhenTheOthersAreEjected(t *testing.T) {
	for name, mk := range all() {
		d := must(outlier.New(outlier.WithMaxEjectionPercent(100), outlier.WithCooldown(time.Hour, time.Hour)))
		ts := targets(t, d, "a", "a", "a")
		eject(t, ts[1])
		eject(t, ts[2])
		b := mk()
		b.Update(ts)
		for range 30 {
			if got, err := b.Pick(context.Background(), ts[0]); err != nil || got != ts[0] {
				t.Fatalf("%s: Pick avoiding the only healthy target = %v, %v; want that target", name, got, err)
			}
		}
	}
}

// P2C scores a target by latency × (calls in flight + 1): of two targets
// with no latency yet, the one with calls in flight loses every pick.
func TestP2C_PicksTheTargetWithFewerCallsInFlight(t *testing.T) {
	ts := targets(t, nil, "", "")
	release := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	ts[0].Endpoint = func(context.Context, any) (any, error) { <-release; return nil, nil }
	for range 3 {
		wg.Go(func() { _, _ = ts[0].Call(context.Background(), nil) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for ts[0].InFlight() < 3 {
		if time.Now().After(deadline) {
			t.Fatal("calls not in flight after 10s")
		}
		time.Sleep(time.Millisecond)
	}
	b := NewP2C()
	b.Update(ts)
	for range 50 {
		if got, _ := b.Pick(context.Background(), nil); got != ts[1] {
			t.Fatalf("picked %s with 3 calls in flight over an idle target", got.ID)
		}
	}
}

// A call cut by its own deadline is a timeout strike:
// WithConsecutiveTimeouts (2) of them eject, well before
// WithConsecutiveFailures (5).
func TestTarget_AttemptDeadlineIsATimeoutStrike(t *testing.T) {
	d := must(outlier.New(outlier.WithMaxEjectionPercent(100), outlier.WithCooldown(time.Hour, time.Hour)))
	d.NewBreaker() // others in the set: the detector always leaves one in
	tg := NewCheckedTarget("hung", hangUntilCancelled, WithBreaker(d.NewBreaker()))
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		_, _ = tg.Call(ctx, nil)
		cancel()
	}
	if !tg.Ejected() {
		t.Fatal("not ejected after two attempts cut by their deadline")
	}
}

// A call that fails fast is recorded as slow (failurePenalty, 1 s): P2C
// must not favour an instance for how quickly it fails.
func TestTarget_FastFailureLooksSlow(t *testing.T) {
	tg := targets(t, nil, "")[0]
	tg.Endpoint = func(context.Context, any) (any, error) { return nil, fmt.Errorf("500") }
	_, _ = tg.Call(context.Background(), nil)
	// Decayed by the idle time since, which a loaded machine stretches;
	// a fast failure recorded as itself would be microseconds.
	if l := tg.Latency(); l < 100*time.Millisecond {
		t.Fatalf("latency %s after a fast failure, want about the 1s penalty", l)
	}
}
