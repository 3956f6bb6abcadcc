package outlier

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// Instances that leave can leave the ejected over the panic threshold:
// of four, two ejected (50 %), then instances in rotation leave
// discovery. With both gone every instance left is ejected, and the
// balancers fall back to them without a probe, whose answers an open
// breaker ignores: a recovered instance stayed out for its whole cooldown
// (an hour here, up to 5 m by default). The threshold's rule holds here
// too: once the ejected are over the cap they are probed at once, as when
// it refuses an ejection; while they are within it they wait.
func TestDetector_ReleaseLeavingTheEjectedOverTheCapProbesThemAtOnce(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Hour, time.Hour), WithClock(c.now)))
	bs := breakers(d, 6)
	fail(bs[0], 1)
	fail(bs[1], 1)
	if e, _ := d.Ejected(); e != 2 {
		t.Fatalf("%d ejected, want 2", e)
	}
	c.advance(time.Millisecond)
	bs[5].Release()
	bs[4].Release() // 2 of 4 ejected: within 50 %
	if !bs[0].Ejected() || bs[0].Allow() || bs[1].Allow() {
		t.Fatal("probed early while the ejected are within the cap")
	}
	c.advance(time.Millisecond)
	bs[3].Release()
	bs[2].Release()
	if e, total := d.Ejected(); e != 2 || total != 2 {
		t.Fatalf("%d ejected of %d, want 2 of 2", e, total)
	}
	for i, b := range bs[:2] {
		if b.Ejected() || !b.Allow() {
			t.Fatalf("instance %d: still cooling down with every instance left ejected", i)
		}
	}
	bs[0].Record(false)
	if bs[0].State() != Closed {
		t.Fatalf("after a good probe: %s, want closed", bs[0].State())
	}
}

// A probe let through early (a threshold refusal, ProbeEjected) that
// fails repeats the ejection it cut short; it does not double it. Before,
// each early probe doubled the cooldown: a few refusals or retries with
// nowhere else to go while an instance was briefly sick gave it the 5 m
// cap within milliseconds, and once they stopped a recovered instance
// stayed out for those 5 minutes.
func TestBreaker_FailedEarlyProbesDoNotDoubleTheCooldown(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(10*time.Second, 5*time.Minute), WithClock(c.now)))
	b := breakers(d, 4)[0]
	fail(b, 1) // ejected for 10s
	for i := range 6 {
		c.advance(time.Millisecond)
		d.ProbeEjected()
		if !b.Allow() {
			t.Fatalf("early probe %d refused", i+1)
		}
		b.Record(true) // still sick
	}
	c.advance(10*time.Second - time.Millisecond)
	if b.Allow() {
		t.Fatal("probed before the 10s cooldown ended")
	}
	c.advance(time.Millisecond)
	if !b.Allow() {
		t.Fatal("no probe 10s after the last failed early probe: early probes doubled the cooldown")
	}
	b.Record(true) // a probe at the end of its cooldown that fails doubles it
	c.advance(20*time.Second - time.Millisecond)
	if b.Allow() {
		t.Fatal("probed before the doubled 20s cooldown ended")
	}
	c.advance(time.Millisecond)
	if !b.Allow() {
		t.Fatal("no probe after the doubled 20s cooldown")
	}
}

// events records the order of what an Observer hears.
type events struct {
	mu  sync.Mutex
	got []string
}

func (e *events) BreakerChanged(_ string, _, to State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, "changed to "+to.String())
}

func (e *events) BreakerReleased(string, State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got = append(e.got, "released")
}

func (e *events) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.got)
}

// A breaker released while ejected (its instance left discovery) stays
// as it was: a pick from the set before the change that asks Allow after
// the cooldown claims no probe and tells the observer nothing. Before, it
// moved to half-open and the observer heard it after BreakerReleased:
// metrics made the instance's breaker series again after its release had
// deleted it, for an instance that is gone.
func TestBreaker_ReleasedBreakerNeitherProbesNorReportsAfterItsRelease(t *testing.T) {
	c := newClock()
	ev := &events{}
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, time.Second), WithObserver(ev), WithClock(c.now)))
	b := breakers(d, 4)[0]
	fail(b, 1)
	b.Release()
	c.advance(time.Second)
	if b.Allow() {
		t.Error("a released breaker let a probe through")
	}
	b.Record(false)
	if got, want := ev.list(), []string{"changed to open", "released"}; !slices.Equal(got, want) {
		t.Fatalf("observer heard %q, want %q", got, want)
	}
}

// An ejection whose cooldown has ended and that nothing has probed frees
// its slot, unprobed, for a failing instance the threshold would
// otherwise keep in; one still cooling does not. The readmission says
// why (ReasonExpired).
func TestDetector_ExpiredEjectionGivesItsSlotToAFailingInstance(t *testing.T) {
	c := newClock()
	ch := &changes{}
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, time.Minute), WithObserver(ch), WithClock(c.now)))
	bs := breakers(d, 4)
	fail(bs[0], 1)
	c.advance(time.Millisecond)
	fail(bs[1], 1)
	c.advance(999 * time.Millisecond) // bs[0]'s cooldown is over, bs[1]'s not
	fail(bs[2], 1)
	if bs[0].State() != Closed || bs[1].State() != Open || bs[2].State() != Open {
		t.Fatalf("states %s %s %s, want closed (expired), open, open", bs[0].State(), bs[1].State(), bs[2].State())
	}
	if e, _ := d.Ejected(); e != 2 {
		t.Fatalf("%d ejected, want 2", e)
	}
	ch.mu.Lock()
	expired := slices.ContainsFunc(ch.got, func(c Change) bool { return c.To == Closed && c.Reason == ReasonExpired })
	ch.mu.Unlock()
	if !expired {
		t.Error("the unprobed readmission was not reported with ReasonExpired")
	}
	fail(bs[3], 1) // nothing expired: kept in by the threshold
	if bs[1].State() != Open || bs[3].State() != Closed {
		t.Fatalf("a still-cooling ejection gave its slot: %s, %s", bs[1].State(), bs[3].State())
	}
}

// An instance readmitted unprobed (ReasonExpired) starts a new run of
// ejections: its next one lasts the base cooldown, not a doubled one.
func TestDetector_ExpiredReadmissionEndsTheRunOfEjections(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, time.Minute), WithClock(c.now)))
	bs := breakers(d, 4)
	fail(bs[0], 1)
	c.advance(time.Second)
	bs[0].Allow()
	bs[0].Record(true) // failed probe: 2s
	fail(bs[1], 1)
	c.advance(2 * time.Second) // both expired, neither probed
	fail(bs[2], 1)             // takes a slot: bs[0] or bs[1] readmitted unprobed
	fail(bs[3], 1)             // takes the other
	if bs[0].State() != Closed || bs[1].State() != Closed {
		t.Fatalf("states %s %s, want both readmitted", bs[0].State(), bs[1].State())
	}
	c.advance(time.Minute) // bs[2], bs[3] expire too
	fail(bs[0], 1)
	c.advance(time.Second)
	if !bs[0].Allow() {
		t.Fatal("no probe 1s after an ejection that followed an unprobed readmission; its old run doubled it")
	}
}
