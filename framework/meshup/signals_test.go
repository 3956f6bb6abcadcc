package meshup

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// One Ctrl-C under `go tool meshup` arrives twice within milliseconds;
// it must stop the mesh, not force it. A second press later forces.
func TestPresses_ACopyOfThePressIsNotASecondPress(t *testing.T) {
	sigs := make(chan os.Signal)
	times := make(chan time.Time) // the clock: presses reads one per signal
	done := make(chan struct{})
	defer close(done)
	stops, forces := make(chan struct{}, 4), make(chan struct{}, 4)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		presses(sigs, done, func() time.Time { return <-times }, func() { stops <- struct{}{} }, func() { forces <- struct{}{} })
	}()
	press := func(sig os.Signal, at time.Duration) {
		t.Helper()
		for _, send := range []func(){func() { sigs <- sig }, func() { times <- time.Unix(0, 0).Add(at) }} {
			took := make(chan struct{})
			go func() { send(); close(took) }()
			select {
			case <-took:
			case <-time.After(10 * time.Second):
				t.Fatalf("presses stopped reading signals before the press at %s (it forced on a copy)", at)
			}
		}
	}
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", what)
		}
	}
	press(os.Interrupt, 0)
	wait(stops, "stop on the first press")
	press(os.Interrupt, 2*time.Millisecond) // go tool's relayed copy
	press(syscall.SIGTERM, 12*time.Millisecond)
	press(os.Interrupt, time.Second) // a person's second press
	wait(forces, "force on the second press")
	wait(ended, "return after forcing")
	if len(stops) != 0 || len(forces) != 0 {
		t.Fatalf("extra stops (%d) or forces (%d)", len(stops), len(forces))
	}
}

func TestPresses_EndsWithDone(t *testing.T) {
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		presses(make(chan os.Signal), done, time.Now, func() {}, func() { t.Error("forced") })
	}()
	close(done)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("presses did not return when done closed")
	}
}
