package meshup

import (
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopSignals stop the mesh in order: Ctrl-C, SIGTERM, and SIGHUP — the
// terminal or SSH session `make up` runs in was closed, and the launcher
// is its foreground process group. Go's default for SIGHUP is to die at
// once (exit 129), the services then stopping on their parent-death
// signal while the registry went down with them. A SIGHUP the launcher
// was started ignoring (nohup) stays ignored.
func stopSignals() []os.Signal {
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		sigs = append(sigs, syscall.SIGHUP)
	}
	return sigs
}

// samePress is how soon after the first signal another one counts as the
// same Ctrl-C. Under `go tool meshup` a press arrives twice: from the
// terminal (the whole process group) and relayed by go tool, which passes
// every signal it gets on to the tool; the copies come within
// milliseconds, a person's second press a good deal later.
const samePress = 250 * time.Millisecond

// presses reads sigs until done: the first signal calls stop, a later one
// — not a copy of the first (samePress) — calls force. now is the clock.
func presses(sigs <-chan os.Signal, done <-chan struct{}, now func() time.Time, stop, force func()) {
	var first time.Time
	for {
		select {
		case <-sigs:
		case <-done:
			return
		}
		switch t := now(); {
		case first.IsZero():
			first = t
			stop()
		case t.Sub(first) >= samePress:
			force()
			return
		}
	}
}
