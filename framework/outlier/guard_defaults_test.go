package outlier

import (
	"errors"
	"testing"
	"time"
)

// oncall.md, An instance is ejected: with the defaults, 5 failures in a
// row (4 do not) eject an instance for 10 s, doubled at each failed probe
// up to 5 m; "outpaced" is 5 outpaced attempts in a row too. The other
// tests set these through options, so a changed default passed them.
func TestNew_DefaultsEjectAfterFiveForTenSecondsDoublingToFiveMinutes(t *testing.T) {
	now := time.Unix(1000, 0)
	obs := &changes{}
	d := must(New(WithMaxEjectionPercent(100), WithObserver(obs), WithClock(func() time.Time { return now })))
	d.NewBreaker() // company, so the ejection percentage has room
	for _, kind := range []Failure{Failed, Outpaced} {
		b := d.NewBreaker()
		for range 4 {
			b.RecordError(kind, errors.New("boom"))
		}
		if b.State() != Closed {
			t.Fatalf("%v: ejected after 4 in a row; the default is 5", kind)
		}
		b.RecordError(kind, errors.New("boom"))
		if got := obs.last(); got.To != Open || got.Cooldown != 10*time.Second {
			t.Fatalf("%v: after 5 in a row %+v; want ejected for 10s", kind, got)
		}
		b.Release()
	}

	b := d.NewBreaker()
	for range 5 {
		b.Record(true)
	}
	want := 10 * time.Second
	for i := range 12 { // 10s, 20s, … reaches the cap within 6 doublings
		if got := obs.last(); got.To != Open || got.Cooldown != want {
			t.Fatalf("ejection %d: %+v; want cooldown %v", i+1, got, want)
		}
		now = now.Add(want)
		if !b.Allow() {
			t.Fatalf("ejection %d: no probe after its cooldown %v", i+1, want)
		}
		b.Record(true) // the probe fails
		want = min(2*want, 5*time.Minute)
	}
	if want != 5*time.Minute {
		t.Fatalf("cooldown ended at %v; want the 5m cap", want)
	}
}
