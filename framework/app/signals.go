package app

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/internal/stopsig"
)

// repeatWindow is how long after the first stop signal another one is
// taken as the same request delivered twice (stopsig.Window, shared with
// the warren CLI).
const repeatWindow = stopsig.Window

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

// watchSignals starts reading sigs (stopsig.Watch): the first signal asks
// for a graceful stop, a later one, window or more after it, forces exit;
// a repeat within the window is logged and dropped. Close stops it.
func watchSignals(sigs <-chan os.Signal, logger log.Logger, window time.Duration) *stopsig.Watcher {
	return stopsig.Watch(sigs, window, func(sig os.Signal) {
		level.Info(logger).Log("msg", "signal repeated within "+window.String()+" of the first, taken as the same request; send another to force exit", "signal", sig)
	})
}
