package shed

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unread reports whether c's socket holds bytes not yet read (SIOCINQ):
// the tests' own look at what the waiting signal counts.
func unread(c net.Conn) bool {
	sc, ok := rawConn(c).(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }) != nil {
		return false
	}
	return n > 0
}
