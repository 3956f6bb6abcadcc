// Package acceptloop is the one accept loop of Warren's test servers and
// helpers (the fault-test proxy, the silent listener, the line-echo
// transport, the port hold): it accepts until its listener is closed and
// waits out a failed accept instead of returning. An accept fails when the
// process is out of file descriptors for a moment (EMFILE), as a test with
// many clients may be; a loop that returned then left a port nobody
// accepted on, and the test using it failed far from the cause, or hung
// to its deadline.
//
// The owner runs Run in a goroutine it owns (or in its Serve), stops it by
// closing the listener, and waits for Run to return.
package acceptloop

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// Bounds of the wait after a failed accept, as net/http's Server has
// them: 5 ms, doubling at each failure in a row, up to 1 s.
const (
	MinWait = 5 * time.Millisecond
	MaxWait = time.Second
)

// Option configures Run.
type Option func(*config)

type config struct {
	stop   <-chan struct{}
	failed func(error)
}

// WithStop ends a wait after a failed accept as soon as stop is closed,
// and Run returns nil. The owner closes stop beside the listener; without
// it, Run sees the closed listener at its next accept, up to MaxWait
// later.
func WithStop(stop <-chan struct{}) Option { return func(c *config) { c.stop = stop } }

// WithFailed calls f, in Run's goroutine, with every failed accept that
// Run waits out, so a test can tell that it made one fail.
func WithFailed(f func(error)) Option { return func(c *config) { c.failed = f } }

// ErrBroken is wrapped by the error Run returns when an accept fails in a
// way no wait mends: the listener is not a listening socket any more.
var ErrBroken = errors.New("acceptloop: the listener cannot accept")

// Run accepts connections on ln and passes each to handle, until ln is
// closed; then it returns nil. handle runs in Run's goroutine, so one that
// blocks starts its own goroutine (its owner's to stop). A failed accept
// is waited out, MinWait doubling to MaxWait, and accepting goes on;
// only one that says the listener itself is unusable (EBADF, EINVAL,
// ENOTSOCK, EFAULT) ends Run, with an error wrapping ErrBroken
// and the accept's error.
func Run(ln net.Listener, handle func(net.Conn), opts ...Option) error {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	var wait time.Duration
	for {
		c, err := ln.Accept()
		if err == nil {
			wait = 0
			handle(c)
			continue
		}
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if broken(err) {
			return fmt.Errorf("%w: %w", ErrBroken, err)
		}
		if cfg.failed != nil {
			cfg.failed(err)
		}
		wait = min(max(2*wait, MinWait), MaxWait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-cfg.stop: // a nil stop never ends the wait
			t.Stop()
			return nil
		}
	}
}

// broken reports whether err says the listener cannot accept at all, so
// that waiting is pointless. Everything else — EMFILE, ENFILE, ENOBUFS,
// ENOMEM, EPERM from a firewall, a network error passed on (accept(2)
// asks callers to retry those, EOPNOTSUPP among them for TCP), or an
// error of a listener that is not a socket — is worth another try.
func broken(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.EBADF, syscall.EINVAL, syscall.ENOTSOCK, syscall.EFAULT:
		return true
	}
	return false
}
