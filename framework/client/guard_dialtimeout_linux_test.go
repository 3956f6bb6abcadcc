package client

import (
	"context"
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// docs/client.md: DefaultTransport has "a 2s dial timeout" — a dial
// failure is safe to retry for any method, so a dial that hangs must end
// on its own. A loopback listener whose accept queue is full drops new
// SYNs (Linux), so a dial to it hangs; the transport's dial must end with
// its own timeout, while the caller's 12 s context is still live (under
// the 20 s TCP_USER_TIMEOUT, which also ends a connect), and not before
// 2 s (a timer never fires early). Without the Dialer's Timeout, or with
// one of 12 s or more, or under 2 s, this fails; the value between
// (5 s, say) cannot be told from 2 s without a timing assertion.
func TestGuard_DefaultTransportDialTimesOutOnItsOwnAfterTwoSeconds(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // an accept queue of one, never accepted
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue: connections complete until one hangs.
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Skip("the kernel kept accepting connections into a full queue: no hanging dial to test with")
	}
	// The caller gives up after 12 s by cancelling, not by a deadline:
	// net.Dialer takes a context deadline as its own dial deadline, and
	// its "i/o timeout" would pass for the transport's.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := time.AfterFunc(12*time.Second, cancel)
	defer stop.Stop()
	start := time.Now()
	c, err := DefaultTransport().DialContext(ctx, "tcp", addr)
	el := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("dial to a full accept queue succeeded; want it to hang and time out")
	}
	if ctx.Err() != nil {
		t.Fatalf("the dial ran until the caller gave up at 12 s (%v after %v): DefaultTransport has no dial timeout of its own under 12 s", err, el)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial failed with %v after %v, want a timeout", err, el)
	}
	if el < 2*time.Second {
		t.Fatalf("dial timed out after %v, want the documented 2 s", el)
	}
}
