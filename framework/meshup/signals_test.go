package meshup

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/stopsig"
)

// followed runs followSignals over a watcher of sigs with window, and
// counts its stops and forces; ended closes when it returns.
func followed(t *testing.T, window time.Duration) (sigs chan os.Signal, done chan struct{}, stops, forces chan struct{}, ended chan struct{}) {
	sigs = make(chan os.Signal)
	w := stopsig.Watch(sigs, window, nil)
	t.Cleanup(w.Close)
	done, ended = make(chan struct{}), make(chan struct{})
	stops, forces = make(chan struct{}, 4), make(chan struct{}, 4)
	go func() { // ends when done closes or after force
		defer close(ended)
		followSignals(w, done, func() { stops <- struct{}{} }, func() { forces <- struct{}{} })
	}()
	return
}

func send(t *testing.T, sigs chan<- os.Signal, sig os.Signal) {
	t.Helper()
	select {
	case sigs <- sig:
	case <-time.After(10 * time.Second):
		t.Fatalf("%v not read within 10s", sig)
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
}

// One Ctrl-C under `go tool meshup` arrives twice within milliseconds; it
// must stop the mesh, not force it. (A one-minute window: the rule is
// tested here, stopsig tests its one second.)
func TestFollowSignals_ACopyStopsOnce(t *testing.T) {
	sigs, done, stops, forces, ended := followed(t, time.Minute)
	send(t, sigs, os.Interrupt)
	waitClosed(t, stops, "stop on the first signal")
	send(t, sigs, os.Interrupt)    // go tool's relayed copy
	send(t, sigs, syscall.SIGTERM) // and another
	send(t, sigs, os.Interrupt)    // read: the watcher took the copies before it
	close(done)
	waitClosed(t, ended, "return once done closed")
	if len(stops) != 0 || len(forces) != 0 {
		t.Fatalf("copies within the window: %d more stops, %d forces; want none", len(stops), len(forces))
	}
}

// A second signal after the window forces (a window of 0: any second one).
func TestFollowSignals_ASecondSignalForces(t *testing.T) {
	sigs, _, stops, forces, ended := followed(t, 0)
	send(t, sigs, os.Interrupt)
	waitClosed(t, stops, "stop on the first signal")
	send(t, sigs, os.Interrupt)
	waitClosed(t, forces, "force on the second signal")
	waitClosed(t, ended, "return after forcing")
}

func TestFollowSignals_EndsWithDone(t *testing.T) {
	_, done, _, forces, ended := followed(t, time.Minute)
	close(done)
	waitClosed(t, ended, "return once done closed")
	if len(forces) != 0 {
		t.Fatal("forced")
	}
}
