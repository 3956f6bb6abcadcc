// Package stopsig tells a second request to stop from the first one
// delivered twice: the rule services (framework/app), the warren CLI and
// the dev mesh launcher share (docs/lifecycle.md, "second signal"), with
// the signals they stop on.
package stopsig

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Signals are the signals a Warren process takes as a request to stop:
// SIGTERM (an orchestrator, kill, timeout(1)), SIGINT (Ctrl-C) and SIGHUP
// (the terminal or SSH session it runs in was closed; Go's default is to
// die at once, exit 129, with no withdraw or drain). A SIGHUP the process
// was started ignoring (nohup, or a supervisor that asks for it) stays
// ignored: signal.Notify would undo that.
func Signals() []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// Window is how long after the first stop signal another one is taken as
// the same request delivered twice, not as a second request that forces
// exit. Duplicates are common: timeout(1) signals its child and then the
// child's whole process group, `go run` and `go tool` relay the Ctrl-C
// the terminal also sends, and a shell's kill of a job reaches every
// process in it. They arrive within milliseconds; a person pressing
// Ctrl-C again to force exit does it later, or again.
const Window = time.Second

// Watcher turns the signals it reads into two requests: the first signal
// asks for a graceful stop (Stop is closed), a later one, the window or
// more after it, forces exit (Force is closed). A repeat within the
// window is passed to the repeated callback and dropped.
type Watcher struct {
	stop, force chan struct{}
	first       os.Signal // set before stop is closed
	forcedBy    os.Signal // set before force is closed

	quit     chan struct{}
	done     chan struct{}
	quitOnce sync.Once
}

// Watch starts reading sigs; Close stops it. repeated, if not nil, is
// called (from the Watcher's goroutine) for each repeat it drops.
func Watch(sigs <-chan os.Signal, window time.Duration, repeated func(os.Signal)) *Watcher {
	w := &Watcher{stop: make(chan struct{}), force: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run(sigs, window, repeated) // owned by w: ends on Close or once forced
	return w
}

func (w *Watcher) run(sigs <-chan os.Signal, window time.Duration, repeated func(os.Signal)) {
	defer close(w.done)
	var firstAt time.Time
	for {
		select {
		case sig := <-sigs:
			switch {
			case w.first == nil:
				w.first, firstAt = sig, time.Now()
				close(w.stop)
			case time.Since(firstAt) < window:
				if repeated != nil {
					repeated(sig)
				}
			default:
				w.forcedBy = sig
				close(w.force)
				return
			}
		case <-w.quit:
			return
		}
	}
}

// Stop is closed by the first signal.
func (w *Watcher) Stop() <-chan struct{} { return w.stop }

// Force is closed by a signal the window or more after the first.
func (w *Watcher) Force() <-chan struct{} { return w.force }

// First is the signal that closed Stop; nil before.
func (w *Watcher) First() os.Signal {
	select {
	case <-w.stop:
		return w.first
	default:
		return nil
	}
}

// ForcedBy is the signal that closed Force; nil before.
func (w *Watcher) ForcedBy() os.Signal {
	select {
	case <-w.force:
		return w.forcedBy
	default:
		return nil
	}
}

// Close stops the watcher and waits for it; idempotent.
func (w *Watcher) Close() {
	w.quitOnce.Do(func() { close(w.quit) })
	<-w.done
}
