// Package silent starts TCP listeners that accept connections and never
// answer, for tests of a peer that hangs: a SIGSTOPped process, or a
// firewall that drops replies, still lets the kernel complete the
// handshake, so a client connects and then waits.
package silent

import (
	"net"
	"sync"
	"testing"

	"github.com/warren-mesh/warren/internal/acceptloop"
)

// Listen listens on 127.0.0.1 on a free port and returns the address.
// Connections are accepted and held unanswered; the listener and every
// connection close when the test ends, and the accepting goroutine has
// returned by then. A failed accept (the test process out of descriptors
// for a moment) is waited out: the listener goes on accepting.
func Listen(t testing.TB) string {
	t.Helper()
	return listen(t)
}

// listen is Listen with options for the accept loop (its tests count the
// failed accepts).
func listen(t testing.TB, opts ...acceptloop.Option) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		stop  = make(chan struct{})
		done  = make(chan error, 1)
	)
	hold := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	go func() { // owned by the test: ends when the cleanup closes stop and ln
		done <- acceptloop.Run(ln, hold, append(opts, acceptloop.WithStop(stop))...)
	}()
	t.Cleanup(func() {
		close(stop)
		ln.Close()
		if err := <-done; err != nil {
			// The listener broke under the test: say so, or the test
			// fails with clients that merely hang.
			t.Errorf("silent: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
