//go:build !linux

package freeport

import (
	"net"
	"sync"

	"github.com/warren-mesh/warren/internal/acceptloop"
)

// heldPort listens on the port and resets every connection it is offered:
// elsewhere than on Linux a held port is not refused exactly (see
// hold_linux.go), but no other socket can bind it.
type heldPort struct {
	ln   net.Listener
	stop chan struct{} // closed by release: ends a wait after a failed accept
	wg   sync.WaitGroup
}

func holdPort(addr string) (*heldPort, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &heldPort{ln: ln, stop: make(chan struct{})}
	p.wg.Add(1)
	go func() { // owned by p: ends when release closes stop and ln
		defer p.wg.Done()
		// A failed accept (out of descriptors) is waited out: returning
		// would leave a port that neither resets nor refuses, and clients
		// would hang on it for the whole outage.
		_ = acceptloop.Run(ln, reset, acceptloop.WithStop(p.stop))
	}()
	return p, nil
}

// reset closes c with an RST, not a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *heldPort) release() {
	close(p.stop) // once: Held.Release calls it once per port
	p.ln.Close()
	p.wg.Wait()
}
