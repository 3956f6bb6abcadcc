// Package tcpopt sets TCP socket options net.Dialer does not expose,
// through its Control hook.
package tcpopt

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// UserTimeout sets TCP_USER_TIMEOUT on a dialled socket: data the
// instance has not acknowledged for that long closes the connection with
// an error. Without it a request written to an instance that vanished
// without a reset (a host that died, a dropped route) waits for the
// kernel's retransmissions to give up, ~15 min, and a call that cannot be
// retried (no per-attempt deadline) waits with it (report j53a F1). An
// instance that is only slow acknowledges the request and is not cut.
func UserTimeout(d time.Duration) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// UserTimeoutOf reads TCP_USER_TIMEOUT back off a connection (tests of
// the dialers that set it).
func UserTimeoutOf(conn net.Conn) (time.Duration, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("tcpopt: a %T has no socket", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var ms int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		ms, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, gerr
}
