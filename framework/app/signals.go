package app

import (
	"os"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/internal/stopsig"
)

// repeatWindow is how long after the first stop signal another one is
// taken as the same request delivered twice (stopsig.Window, shared with
// the warren CLI).
const repeatWindow = stopsig.Window

// watchSignals starts reading sigs (stopsig.Watch): the first signal asks
// for a graceful stop, a later one, window or more after it, forces exit;
// a repeat within the window is logged and dropped. Close stops it.
func watchSignals(sigs <-chan os.Signal, logger log.Logger, window time.Duration) *stopsig.Watcher {
	return stopsig.Watch(sigs, window, func(sig os.Signal) {
		level.Info(logger).Log("msg", "signal repeated within "+window.String()+" of the first, taken as the same request; send another to force exit", "signal", sig)
	})
}
