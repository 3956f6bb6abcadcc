package silent

import (
	"net"
	"testing"
	"time"
)

// A client connects and then reads nothing: the listener accepts and
// never writes.
func TestListen_AcceptsAndNeverAnswers(t *testing.T) {
	addr := Listen(t)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	n, err := c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("read = %d, %v; want a timeout: nothing answers", n, err)
	}
}
