package freeport

import (
	"net"
	"syscall"
)

// heldPort is a socket bound to the port that refuses connections and
// keeps every other socket off it.
type heldPort struct{ ln net.Listener }

// holdPort binds addr the way a listener does (SO_REUSEADDR, so sockets of
// the last run in TIME_WAIT do not stop it), then stops listening
// (shutdown(SHUT_RD) moves a listener to CLOSE: connections are refused)
// and clears SO_REUSEADDR, so another socket's bind conflicts with it and
// fails. A plain bound socket cannot have both: without SO_REUSEADDR it
// cannot be bound over TIME_WAIT, with it another listener may share the
// port.
func holdPort(addr string) (*heldPort, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		ln.Close()
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if serr = syscall.Shutdown(int(fd), syscall.SHUT_RD); serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
		}
	}); err != nil {
		serr = err
	}
	if serr != nil {
		ln.Close()
		return nil, serr
	}
	return &heldPort{ln: ln}, nil
}

func (p *heldPort) release() { p.ln.Close() }
