package meshup

import (
	"os"
	"time"
)

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
