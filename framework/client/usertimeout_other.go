//go:build !linux

package client

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT does not exist: a
// request to an instance that vanished without a reset then waits for the
// kernel's retransmissions to give up.
func setUserTimeout(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}
