//go:build !linux

package freeport

import (
	"net"
	"sync"
)

// heldPort listens on the port and resets every connection it is offered:
// elsewhere than on Linux a held port is not refused exactly (see
// hold_linux.go), but no other socket can bind it.
type heldPort struct {
	ln net.Listener
	wg sync.WaitGroup
}

func holdPort(addr string) (*heldPort, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &heldPort{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by release
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0) // an RST, not a FIN
			}
			c.Close()
		}
	}()
	return p, nil
}

func (p *heldPort) release() {
	p.ln.Close()
	p.wg.Wait()
}
