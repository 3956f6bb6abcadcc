package acceptloop

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/fdshort"
	"github.com/warren-mesh/warren/internal/goroutines"
)

// loop is Run on a fresh 127.0.0.1 listener, in a goroutine the test owns:
// accepted connections arrive on conns, failed accepts are counted.
type loop struct {
	ln     net.Listener
	stop   chan struct{}
	conns  chan net.Conn
	failed atomic.Int64
	done   chan error
}

func start(t *testing.T, withStop bool) *loop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &loop{ln: ln, stop: make(chan struct{}), conns: make(chan net.Conn, 16), done: make(chan error, 1)}
	opts := []Option{WithFailed(func(error) { l.failed.Add(1) })}
	if withStop {
		opts = append(opts, WithStop(l.stop))
	}
	go func() { // owned by the test: ends when close (or the cleanup) closes ln
		l.done <- Run(ln, func(c net.Conn) {
			select {
			case l.conns <- c:
			default:
				c.Close() // the test holds 16 at most; it never needs more
			}
		}, opts...)
	}()
	t.Cleanup(func() { l.close(t, 10*time.Second, true) })
	return l
}

// close closes stop (unless only the listener is to close) and the
// listener, and fails t unless Run returned nil within limit; it may be
// called again.
func (l *loop) close(t *testing.T, limit time.Duration, listener bool) {
	t.Helper()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	if listener {
		l.ln.Close()
	}
	select {
	case err, ok := <-l.done:
		if ok && err != nil {
			t.Errorf("Run = %v after it was stopped, want nil", err)
		}
		if ok {
			close(l.done) // Run has returned; a later close finds it so
		}
	case <-time.After(limit):
		t.Fatalf("Run did not return within %v of its stop", limit)
	}
}

func (l *loop) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", l.ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// accepted waits up to 10 s for the loop to hand over a connection.
func (l *loop) accepted(t *testing.T, what string) {
	t.Helper()
	select {
	case c := <-l.conns:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not accepted within 10 s (failed accepts: %d)", what, l.failed.Load())
	}
}

// Run accepts connections, and returns nil once its listener is closed,
// leaving no goroutine behind.
func TestRun_AcceptsUntilTheListenerClosesThenReturnsNil(t *testing.T) {
	l := start(t, false)
	for range 3 {
		l.dial(t)
		l.accepted(t, "a connection")
	}
	l.close(t, 10*time.Second, true)
	goroutines.WaitAtMost(t, "accept loops", 0, 10*time.Second, "acceptloop.Run(")
	if _, err := net.DialTimeout("tcp", l.ln.Addr().String(), 5*time.Second); err == nil {
		t.Fatal("the port still accepts after its listener closed")
	}
}

// A failed accept (EMFILE: the process out of descriptors) does not end
// Run: once descriptors are free again, the connection that waited and a
// new one are both accepted. A loop that returns on the first error leaves
// the waiting connection unaccepted. Then, short again, closing stop alone
// ends Run mid-wait (accepts would fail on); without stop, closing the
// listener ends it at the next accept.
func TestRun_KeepsAcceptingAfterRunningOutOfDescriptors(t *testing.T) {
	if fdshort.InParent(t) {
		return
	}
	for _, withStop := range []bool{true, false} {
		l := start(t, withStop)
		_, release := fdshort.Dial(t, l.ln.Addr().String(), l.failed.Load)
		release()
		l.accepted(t, "the connection that waited out the shortage")
		l.dial(t)
		l.accepted(t, "a new connection after the shortage")

		before := l.failed.Load()
		_, release = fdshort.Dial(t, l.ln.Addr().String(), l.failed.Load)
		if l.failed.Load() == before {
			t.Fatal("no accept failed while short of descriptors")
		}
		// With stop, closing it alone ends Run mid-wait, while accepts
		// still fail; without, the closed listener does, at the next try.
		l.close(t, MaxWait+5*time.Second, !withStop)
		l.ln.Close()
		release()
	}
	goroutines.WaitAtMost(t, "accept loops", 0, 10*time.Second, "acceptloop.Run(")
}
