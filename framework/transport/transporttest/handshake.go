package transporttest

import (
	"io"
	"net"
	"testing"
	"time"
)

// FailHandshakes connects to the TLS server at addr n times, one after
// the other, sending each time a TLS record that is no ClientHello, so
// each handshake fails on the server; it waits for the server to close
// each connection, by when the server has seen the failure.
func FailHandshakes(t testing.TB, addr string, n int) {
	t.Helper()
	for range n {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("\x16\x03\x01\x00\x05hello")); err != nil {
			c.Close()
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, c) // the alert, then the close
		c.Close()
	}
}
