//go:build !linux

package tcpopt

import (
	"syscall"
	"time"
)

// UserTimeout does nothing where TCP_USER_TIMEOUT does not exist: a
// request to an instance that vanished without a reset then waits for the
// kernel's retransmissions to give up.
func UserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
