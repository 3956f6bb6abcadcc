package stopsig

import (
	"os"
	"syscall"
	"testing"
	"time"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// timeout(1) signals its child and then the child's process group: the
// second SIGTERM is the same request, not a second one forcing exit.
func TestWatch_RepeatWithinTheWindowIsTheSameRequest(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	repeats := make(chan os.Signal, 1)
	w := Watch(sigs, time.Hour, func(s os.Signal) { repeats <- s })
	defer w.Close()
	if w.First() != nil {
		t.Fatalf("First before any signal = %v", w.First())
	}
	sigs <- syscall.SIGTERM
	sigs <- syscall.SIGTERM
	select {
	case s := <-repeats:
		if s != syscall.SIGTERM {
			t.Fatalf("repeat passed as %v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the repeat was not passed to the callback within 10s")
	}
	if !closed(w.Stop()) || w.First() != syscall.SIGTERM {
		t.Fatalf("first signal did not ask for a stop (first %v)", w.First())
	}
	if closed(w.Force()) || w.ForcedBy() != nil {
		t.Fatal("a signal repeated at once forced exit")
	}
	w.Close()
	w.Close() // idempotent
}

// A signal after the window is a second request: it forces exit.
func TestWatch_ALaterSignalForces(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	w := Watch(sigs, time.Millisecond, nil)
	defer w.Close()
	sigs <- syscall.SIGTERM
	<-w.Stop()
	time.Sleep(5 * time.Millisecond)
	sigs <- syscall.SIGINT
	select {
	case <-w.Force():
	case <-time.After(10 * time.Second):
		t.Fatal("a signal after the window did not force exit")
	}
	if w.ForcedBy() != syscall.SIGINT {
		t.Fatalf("forced by %v", w.ForcedBy())
	}
}

// The window services document (docs/lifecycle.md: "within one second").
func TestWindow_IsOneSecond(t *testing.T) {
	if Window != time.Second {
		t.Fatalf("Window = %s, docs/lifecycle.md says one second", Window)
	}
}
