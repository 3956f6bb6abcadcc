// Package silent starts TCP listeners that accept connections and never
// answer, for tests of a peer that hangs: a SIGSTOPped process, or a
// firewall that drops replies, still lets the kernel complete the
// handshake, so a client connects and then waits.
package silent

import (
	"net"
	"sync"
	"testing"
)

// Listen listens on 127.0.0.1 on a free port and returns the address.
// Connections are accepted and held unanswered; the listener and every
// connection close when the test ends, and the accepting goroutine has
// returned by then.
func Listen(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() { // owned by the test: ends when the cleanup closes ln
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
