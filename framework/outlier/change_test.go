package outlier

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// changes records what a ChangeObserver hears.
type changes struct {
	mu  sync.Mutex
	got []Change
}

func (c *changes) BreakerChanged(string, State, State) {}
func (c *changes) BreakerReleased(string, State)       {}
func (c *changes) BreakerChangedWith(_ string, ch Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, ch)
}

func (c *changes) last() Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return Change{}
	}
	return c.got[len(c.got)-1]
}

// A ChangeObserver hears which rule ejected an instance, on what error and
// for how long (report j57b F2), and on readmission how long it was out.
func TestBreaker_ChangeSaysReasonErrorCooldownAndTimeOut(t *testing.T) {
	now := time.Unix(1000, 0)
	obs := &changes{}
	d := must(New(WithConsecutiveFailures(3), WithConsecutiveTimeouts(2), WithCooldown(10*time.Second, time.Minute),
		WithMaxEjectionPercent(100), WithObserver(obs), WithClock(func() time.Time { return now })))
	for _, c := range []struct {
		name  string
		kinds []Failure
		want  Reason
	}{
		{"500s", []Failure{Failed, Failed, Failed}, ReasonFailures},
		{"timeouts", []Failure{TimedOut, TimedOut}, ReasonTimeouts},
		{"outpaced", []Failure{Outpaced, Outpaced, Outpaced}, ReasonOutpaced},
		{"mixed", []Failure{Outpaced, Failed, Outpaced}, ReasonFailures},
	} {
		t.Run(c.name, func(t *testing.T) {
			d.NewBreaker() // the panic threshold keeps one in: give it company
			b := d.NewBreaker()
			last := errors.New("127.0.0.1:1: 500 internal")
			for i, k := range c.kinds {
				err := error(errors.New("earlier"))
				if i == len(c.kinds)-1 {
					err = last
				}
				b.RecordError(k, err)
			}
			got := obs.last()
			if got.To != Open || got.From != Closed || got.Reason != c.want || got.Cooldown != 10*time.Second || got.Err != last {
				t.Fatalf("got %+v, want closed→open, reason %s, cooldown 10s, the last error", got, c.want)
			}
			// The probe fails: ejected again for twice as long.
			now = now.Add(10 * time.Second)
			if !b.Allow() {
				t.Fatal("no probe after the cooldown")
			}
			b.RecordError(Failed, last)
			if got := obs.last(); got.To != Open || got.Reason != ReasonProbe || got.Cooldown != 20*time.Second {
				t.Fatalf("failed probe: %+v, want reason probe, cooldown 20s", got)
			}
			// The next probe passes: out for 30 s in all.
			now = now.Add(20 * time.Second)
			if !b.Allow() {
				t.Fatal("no probe after the second cooldown")
			}
			b.Record(false)
			if got := obs.last(); got.To != Closed || got.Out != 30*time.Second {
				t.Fatalf("readmission: %+v, want out 30s", got)
			}
			b.Release()
		})
	}
}
