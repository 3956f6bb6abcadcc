package app

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
)

// repeatWindow is how long after the first stop signal another one is
// taken as the same request delivered twice, not as a second request that
// forces exit. Duplicates are common: timeout(1) signals its child and
// then the child's whole process group, `go run` and `go tool` relay the
// Ctrl-C the terminal also sends to the service, and a shell's kill of a
// job reaches every process in it. They arrive within milliseconds; a
// person pressing Ctrl-C again to force exit does it later, or again.
const repeatWindow = time.Second

// stopSignals are the signals Run takes as a request to stop: SIGTERM
// (an orchestrator, kill, timeout(1)), SIGINT (Ctrl-C) and SIGHUP (the
// terminal or SSH session a foreground service or `make up` runs in was
// closed). Go's default for SIGHUP is to die at once (exit 129): no
// withdraw, no drain, the dead instance listed until its TTL. A SIGHUP the
// process was started ignoring (nohup, or a supervisor that asks for it)
// stays ignored: signal.Notify would undo that.
func stopSignals() []os.Signal {
	sigs := []os.Signal{syscall.SIGINT, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// signals turns the SIGINT/SIGTERM/SIGHUP Run receives into the App's two
// requests: the first signal asks for a graceful stop (stop is closed),
// a later one, the window or more after it, forces exit (force is
// closed). A repeat within the window is logged and dropped.
type signals struct {
	stop, force chan struct{}
	first       os.Signal // set before stop is closed
	forcedBy    os.Signal // set before force is closed

	quit     chan struct{}
	done     chan struct{}
	quitOnce sync.Once
}

// watchSignals starts reading sigs; Close stops it.
func watchSignals(sigs <-chan os.Signal, logger log.Logger, window time.Duration) *signals {
	s := &signals{stop: make(chan struct{}), force: make(chan struct{}), quit: make(chan struct{}), done: make(chan struct{})}
	go s.run(sigs, logger, window) // owned by s: ends on Close or once forced
	return s
}

func (s *signals) run(sigs <-chan os.Signal, logger log.Logger, window time.Duration) {
	defer close(s.done)
	var firstAt time.Time
	for {
		select {
		case sig := <-sigs:
			switch {
			case s.first == nil:
				s.first, firstAt = sig, time.Now()
				close(s.stop)
			case time.Since(firstAt) < window:
				level.Info(logger).Log("msg", "signal repeated within "+window.String()+" of the first, taken as the same request; send another to force exit", "signal", sig)
			default:
				s.forcedBy = sig
				close(s.force)
				return
			}
		case <-s.quit:
			return
		}
	}
}

// Close stops the watcher and waits for it; idempotent.
func (s *signals) Close() {
	s.quitOnce.Do(func() { close(s.quit) })
	<-s.done
}
