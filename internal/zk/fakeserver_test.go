package zk

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeServer listens on loopback and runs handle for each connection it
// accepts, sending the time of each accept on accepted (if not nil, and
// not blocking). Everything stops with the test.
func fakeServer(t *testing.T, accepted chan<- time.Time, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			if accepted != nil {
				select {
				case accepted <- time.Now():
				default:
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readConnectRequest reads one length-prefixed packet, the client's
// connect request.
func readConnectRequest(c net.Conn) error {
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(n[:])))
	return err
}

// drain reads until the client leaves or the test ends.
func drain(c net.Conn) { io.Copy(io.Discard, c) }
