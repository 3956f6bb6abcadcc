package app

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
)

// tee sends every line to the journal and keeps it in lines too.
type tee struct {
	j *journal
	l *lines
}

func (t tee) Log(kv ...any) error { t.j.Log(kv...); return t.l.Log(kv...) }

// blockingCloser notes that its Close started, then waits for release.
type blockingCloser struct {
	j       *journal
	release <-chan struct{}
}

func (b blockingCloser) Close() error { b.j.add("closer:entered"); <-b.release; return nil }

// A second signal once the drain is over has nothing left to cut short:
// it said "second signal, forcing exit" while the release went on to its
// end all the same, and Run returned ErrForced after a shutdown that
// had withdrawn, waited and drained in full (exit 1 instead of 0). Now
// it is logged as such and Run returns what the phases did.
func TestRun_SecondSignalDuringTheReleaseForcesNothing(t *testing.T) {
	j := &journal{}
	out := &lines{}
	release := make(chan struct{})
	var released bool
	defer func() {
		if !released {
			close(release)
		}
	}()
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithLogger(tee{j, out}), WithSignals(true),
		WithCloser(blockingCloser{j, release}))...)
	if err != nil {
		t.Fatal(err)
	}
	a.opts.releaseTimeout = time.Minute // the closer, not the bound, ends the release here
	done := start(t, a, context.Background())
	first := time.Now()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	waitJournal(t, j, "closer:entered") // withdrawn, drained, releasing
	// Not within repeatWindow of the first: a second request, not a repeat.
	time.Sleep(time.Until(first.Add(repeatWindow + 200*time.Millisecond)))
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	waitLogged(t, out, "second signal")
	close(release)
	released = true
	err = wait(t, done)
	if errors.Is(err, ErrForced) || err != nil {
		t.Fatalf("Run = %v, want nil: withdraw, grace, drain and release all ran to their end", err)
	}
	if n := out.count("forcing exit"); n != 0 {
		t.Fatalf("%d line(s) say the exit was forced while nothing was cut: %q", n, out.all())
	}
	if got := j.phaseErr("exit"); got != "none" {
		t.Fatalf("exit line err=%q, want none", got)
	}
	for _, l := range out.all() {
		if strings.Contains(l, "second signal") && !strings.Contains(l, "release") {
			t.Fatalf("the second signal's line %q does not say the release goes on", l)
		}
	}
}

func (l *lines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.l)
}

// A shutdown begun by a transport that stopped on its own and then forced
// returned ErrForced alone: why the transport stopped was in no line at
// all (the withdraw line has only "echo server stopped", and Run's error
// is the exit line's). Run returns both, the failure first.
func TestRun_AForcedExitKeepsTheTransportFailureThatBeganIt(t *testing.T) {
	j := &journal{}
	echo := &dying{Server: transporttest.NewLineEcho("127.0.0.1:0"), die: make(chan struct{})}
	a, err := New("svc", okHandler(), memory.New(), testOptions(j, WithSignals(true), WithServer(echo), WithGracePeriod(time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	done := start(t, a, context.Background())
	close(echo.die)
	waitJournal(t, j, "phase:grace")
	// The first signal during a shutdown already under way asks for what
	// is happening; a second one, past the repeat window, forces exit.
	first := time.Now()
	syscall.Kill(syscall.Getpid(), syscall.SIGTERM)
	time.Sleep(time.Until(first.Add(repeatWindow + 200*time.Millisecond)))
	syscall.Kill(syscall.Getpid(), syscall.SIGINT)
	err = wait(t, done)
	if !errors.Is(err, ErrForced) || !errors.Is(err, ErrServe) || !strings.Contains(err.Error(), "listener broke") {
		t.Fatalf("Run = %v, want ErrForced and the ErrServe that began the shutdown, with its reason", err)
	}
	if got := j.phaseErr("exit"); got != err.Error() {
		t.Fatalf("exit line err=%q, want Run's error %q", got, err)
	}
}
