package outlier

import (
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock() *clock                   { return &clock{t: time.Unix(1000, 0)} }
func fail(b *Breaker, n int) {
	for range n {
		b.Record(true)
	}
}
func breakers(d *Detector, n int) []*Breaker {
	out := make([]*Breaker, n)
	for i := range out {
		out[i] = d.NewBreaker()
	}
	return out
}

func TestBreaker_EjectsAfterConsecutiveFailuresOnly(t *testing.T) {
	d := must(New(WithConsecutiveFailures(3)))
	b := breakers(d, 4)[0]
	fail(b, 2)
	b.Record(false) // a success resets the run
	fail(b, 2)
	if b.State() != Closed {
		t.Fatalf("state %s after non-consecutive failures", b.State())
	}
	fail(b, 1)
	if b.State() != Open || b.Allow() || !b.Ejected() {
		t.Fatalf("state %s after 3 consecutive failures; want open and refusing", b.State())
	}
}

func TestBreaker_LetsOneProbeThroughAfterCooldownAndClosesOnSuccess(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, time.Minute), WithClock(c.now)))
	b := breakers(d, 2)[0]
	fail(b, 1)
	c.advance(999 * time.Millisecond)
	if b.Allow() {
		t.Fatal("allowed during cooldown")
	}
	c.advance(time.Millisecond)
	if !b.Allow() {
		t.Fatal("probe refused after cooldown")
	}
	if b.State() != HalfOpen || b.Allow() {
		t.Fatalf("state %s: a second probe was let through", b.State())
	}
	b.Record(false)
	if b.State() != Closed || !b.Allow() {
		t.Fatalf("state %s after a good probe", b.State())
	}
	if e, _ := d.Ejected(); e != 0 {
		t.Fatalf("detector still counts %d ejected", e)
	}
}

func TestBreaker_FailedProbeDoublesTheCooldownUpToTheCap(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, 3*time.Second), WithClock(c.now)))
	b := breakers(d, 2)[0]
	fail(b, 1) // first ejection: 1s
	c.advance(time.Second)
	for _, want := range []time.Duration{2 * time.Second, 3 * time.Second, 3 * time.Second} {
		if !b.Allow() {
			t.Fatal("probe refused")
		}
		b.Record(true) // failed probe: eject again
		c.advance(want - time.Millisecond)
		if b.Allow() {
			t.Fatalf("allowed before the %s cooldown ended", want)
		}
		c.advance(time.Millisecond)
	}
}

func TestBreaker_UnansweredProbeIsRetriedAfterProbeTimeout(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, time.Second), WithProbeTimeout(time.Second), WithClock(c.now)))
	b := breakers(d, 2)[0]
	fail(b, 1)
	c.advance(time.Second)
	if !b.Allow() || b.Allow() {
		t.Fatal("want exactly one probe")
	}
	c.advance(time.Second)
	if !b.Allow() {
		t.Fatal("no new probe after the first went unanswered")
	}
}

func TestDetector_NeverEjectsMoreThanMaxPercentAndKeepsOne(t *testing.T) {
	cases := []struct {
		n, percent, want int
	}{
		{n: 4, percent: 50, want: 2},
		{n: 3, percent: 50, want: 1},
		{n: 2, percent: 50, want: 1},
		{n: 1, percent: 50, want: 0},
		{n: 3, percent: 100, want: 2},
	}
	for _, tc := range cases {
		d := must(New(WithConsecutiveFailures(1), WithMaxEjectionPercent(tc.percent)))
		for _, b := range breakers(d, tc.n) {
			fail(b, 3)
		}
		if got, _ := d.Ejected(); got != tc.want {
			t.Errorf("%d instances at %d%%: %d ejected, want %d", tc.n, tc.percent, got, tc.want)
		}
	}
}

func TestBreaker_ReleaseFreesTheEjectionSlot(t *testing.T) {
	d := must(New(WithConsecutiveFailures(1)))
	bs := breakers(d, 3)
	fail(bs[0], 1)
	fail(bs[1], 1)
	if bs[1].State() != Closed {
		t.Fatal("second ejection beyond 50% of 3")
	}
	bs[0].Release()
	bs[0].Release()
	if e, total := d.Ejected(); e != 0 || total != 2 {
		t.Fatalf("after Release: %d ejected of %d", e, total)
	}
	fail(bs[1], 1)
	if bs[1].State() != Open {
		t.Fatal("slot not freed by Release")
	}
}

// Two attempts in a row that got no answer before their deadline eject
// the instance, before the five plain failures WithConsecutiveFailures
// asks for; an answer between them starts the count again.
func TestBreaker_EjectsAfterConsecutiveTimeouts(t *testing.T) {
	d := must(New())
	b := breakers(d, 4)[0]
	b.RecordTimeout()
	b.Record(false)
	b.RecordTimeout()
	if b.State() != Closed {
		t.Fatalf("state %s after timeouts with an answer between them", b.State())
	}
	b.RecordTimeout()
	if b.State() != Open || b.Allow() {
		t.Fatalf("state %s after 2 consecutive timeouts; want open and refusing", b.State())
	}
}

// Of two instances, one was ejected (a stall, say) and then the other
// fails: the panic threshold keeps it in, and the ejected one is probed
// at once instead of after its cooldown. A good probe readmits it, and
// the failing instance's next run of failures ejects it.
func TestDetector_PanicThresholdProbesTheEjectedAtOnce(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(2), WithCooldown(time.Hour, time.Hour), WithClock(c.now)))
	bs := breakers(d, 2)
	stalled, dead := bs[0], bs[1]
	fail(stalled, 2)
	c.advance(time.Millisecond)
	if stalled.State() != Open || stalled.Allow() {
		t.Fatalf("stalled: %s and allowed; want open and refusing", stalled.State())
	}
	fail(dead, 2) // kept in by the threshold
	if dead.State() != Closed {
		t.Fatalf("dead: %s, want closed (the threshold keeps one in)", dead.State())
	}
	if stalled.Ejected() || !stalled.Allow() {
		t.Fatal("the ejected instance is not probed once the threshold kept a failing one in")
	}
	if stalled.Allow() {
		t.Fatal("a second probe was let through")
	}
	stalled.Record(false)
	fail(dead, 2)
	if stalled.State() != Closed || dead.State() != Open {
		t.Fatalf("after the good probe: stalled %s, dead %s; want closed and open", stalled.State(), dead.State())
	}
	// A refusal before an ejection does not shorten it.
	c.advance(time.Millisecond)
	fail(stalled, 2) // refused: dead holds the one slot
	c.advance(time.Millisecond)
	if !dead.Allow() { // probed at once: the refusal came after its ejection
		t.Fatal("dead: no probe after a refusal that came after its ejection")
	}
	dead.Record(true) // the probe fails: ejected again, after the refusal
	if !dead.Ejected() || dead.Allow() {
		t.Fatal("an instance ejected after the last refusal was probed before its cooldown")
	}
}

// The defaults docs/client.md states: 5 failures in a row eject, for
// 10 s doubling to 5 m; a probe unanswered for 5 s lets another through;
// at most 50 % ejected.
func TestNew_DocumentedDefaults(t *testing.T) {
	c := newClock()
	d := must(New(WithClock(c.now)))
	bs := breakers(d, 10)
	b := bs[0]
	fail(b, 4)
	if b.State() != Closed {
		t.Fatalf("state %s after 4 failures, want closed", b.State())
	}
	fail(b, 1)
	if b.State() != Open {
		t.Fatalf("state %s after 5 failures, want open", b.State())
	}
	// Cooldowns of the failed probes that follow: 10s, 20s, … capped at 5m.
	for i, cd := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute} {
		c.advance(cd - time.Millisecond)
		if b.Allow() {
			t.Fatalf("ejection %d: allowed before its %s cooldown ended", i+1, cd)
		}
		c.advance(time.Millisecond)
		if !b.Allow() {
			t.Fatalf("ejection %d: no probe after its %s cooldown", i+1, cd)
		}
		if i == 0 { // the probe went unanswered: another after 5s, not sooner
			c.advance(5*time.Second - time.Millisecond)
			if b.Allow() {
				t.Fatal("a second probe before the 5s probe timeout")
			}
			c.advance(time.Millisecond)
			if !b.Allow() {
				t.Fatal("no second probe after the 5s probe timeout")
			}
		}
		b.Record(true)
	}
	for _, x := range bs[1:] {
		fail(x, 5)
	}
	if got, _ := d.Ejected(); got != 5 {
		t.Fatalf("%d of 10 ejected, want 5 (50%%)", got)
	}
}

// A good probe readmits the instance with a clean slate: its next
// ejection lasts the base cooldown again, not the doubled one.
func TestBreaker_ReadmissionResetsTheDoubling(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(1), WithCooldown(time.Second, time.Minute), WithClock(c.now)))
	b := breakers(d, 2)[0]
	fail(b, 1) // 1s
	c.advance(time.Second)
	b.Allow()
	b.Record(true) // 2s
	c.advance(2 * time.Second)
	b.Allow()
	b.Record(false) // readmitted
	fail(b, 1)
	c.advance(time.Second)
	if !b.Allow() {
		t.Fatal("no probe 1s after an ejection that followed a readmission; the doubled cooldown was kept")
	}
}

// When the panic threshold keeps a failing instance in, its count starts
// again: once a slot frees, it takes a full new run of failures to eject
// it, not the next single one.
func TestDetector_RefusedEjectionStartsANewRun(t *testing.T) {
	d := must(New(WithConsecutiveFailures(3)))
	bs := breakers(d, 3)
	fail(bs[0], 3) // ejected: the one slot of three at 50 %
	fail(bs[1], 3) // refused: kept in
	if bs[1].State() != Closed {
		t.Fatalf("second instance %s, want kept in by the panic threshold", bs[1].State())
	}
	bs[0].Release() // the slot frees
	fail(bs[1], 2)
	if bs[1].State() != Closed {
		t.Fatalf("second instance %s after 2 failures of a new run, want closed", bs[1].State())
	}
	fail(bs[1], 1)
	if bs[1].State() != Open {
		t.Fatalf("second instance %s after a full new run, want open", bs[1].State())
	}
}

// ProbeEjected has every instance ejected so far probed at once, one probe
// each, as a threshold refusal does; one ejected after it waits out its
// cooldown. The client calls it when a retry or hedge has nowhere to go
// but the instance it avoids (report j60a F8).
func TestDetector_ProbeEjectedProbesTheEjectedAtOnce(t *testing.T) {
	c := newClock()
	d := must(New(WithConsecutiveFailures(2), WithCooldown(time.Hour, time.Hour), WithClock(c.now)))
	bs := breakers(d, 4)
	ejected := bs[0]
	fail(ejected, 2)
	c.advance(time.Millisecond)
	if !ejected.Ejected() || ejected.Allow() {
		t.Fatal("ejected: taking traffic before ProbeEjected")
	}
	d.ProbeEjected()
	if ejected.Ejected() || !ejected.Allow() {
		t.Fatal("no probe of the ejected instance after ProbeEjected")
	}
	if ejected.Allow() {
		t.Fatal("a second probe was let through")
	}
	ejected.Record(false)
	if ejected.State() != Closed {
		t.Fatalf("after the good probe: %s, want closed", ejected.State())
	}
	c.advance(time.Millisecond)
	later := bs[1]
	fail(later, 2)
	if !later.Ejected() || later.Allow() {
		t.Fatal("an instance ejected after ProbeEjected was probed before its cooldown")
	}
}
