package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/transport"
)

// A drain that ends while a health check is being answered cut a request:
// Shutdown says so. (Only the service's handlers were counted, so it
// returned nil, "nothing cut", report h5.)
func TestShutdown_HealthCheckInFlightIsCut(t *testing.T) {
	live := health.NewSet(20 * time.Second)
	checking, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	live.Add("slow", func(ctx context.Context) error {
		if once.CompareAndSwap(false, true) {
			close(checking)
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	defer close(release) // before the server's Close (Cleanup): its handler returns
	s, err := New(http.NotFoundHandler(), WithAddr("127.0.0.1:0"), WithoutShedding())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "svc", Nonce: "n", Live: live, Ready: health.NewSet(0), Logger: log.NewNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() { s.Close() })

	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case <-checking:
	case <-time.After(10 * time.Second):
		t.Fatal("the health check did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = s.Shutdown(ctx)
	if !errors.Is(err, transport.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 HTTP request(s) still in flight") {
		t.Fatalf("Shutdown cutting a health check being answered = %v; want ErrDrainTimeout naming 1 request", err)
	}
	waitServe(t, done)
}

// A drain that ends while an answer waits on a slow reader cut it, though
// its handler has returned: net/http writes an answer's last bytes after
// the handler. The caller here pipelines requests for 3 KB answers and
// reads nothing, with small socket buffers: each handler returns with its
// answer in net/http's buffers, until one answer's last flush cannot be
// written. (Only the service's handlers were counted, so Shutdown
// returned nil, "nothing cut", report h5.)
func TestShutdown_AnswerBlockedOnASlowReaderIsCut(t *testing.T) {
	var entered, returned atomic.Int64
	body := strings.Repeat("x", 3000) // with its headers, within net/http's 4 KB buffer
	s, err := New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered.Add(1)
		defer returned.Add(1)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write([]byte(body))
	}), WithAddr("127.0.0.1:0"), WithoutShedding())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host("n"))
	if err != nil {
		t.Fatal(err)
	}
	var state atomic.Int64 // the connection's latest http.ConnState
	prev := s.srv.ConnState
	s.srv.ConnState = func(c net.Conn, st http.ConnState) {
		state.Store(int64(st))
		if st == http.StateNew {
			// A small send buffer, so the kernel cannot take every
			// answer (it grows to megabytes on loopback by itself).
			if tc, ok := rawTCP(c); ok {
				_ = tc.SetWriteBuffer(4096)
			}
		}
		prev(c, st)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() { s.Close() })

	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // the test's own bound
	const requests = 64                                 // 192 KB of answers
	if _, err := fmt.Fprint(c, strings.Repeat("GET /big HTTP/1.1\r\nHost: x\r\n\r\n", requests)); err != nil {
		t.Fatal(err)
	}
	// The server is stuck on one answer's last flush: every handler
	// that began has returned, the connection still has a request under
	// way, and no handler begins for a while.
	last, since := int64(-1), time.Now()
	waitFor(t, "an answer blocked on the reader after its handler", func() bool {
		n := entered.Load()
		if n != last {
			last, since = n, time.Now()
			return false
		}
		return n > 0 && n < requests && returned.Load() == n && http.ConnState(state.Load()) == http.StateActive &&
			time.Since(since) > 300*time.Millisecond
	})
	if s.InFlight() != 0 {
		t.Fatalf("InFlight = %d; want 0, the handler has returned", s.InFlight())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err = s.Shutdown(ctx)
	if !errors.Is(err, transport.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 HTTP request(s) still in flight") {
		t.Fatalf("Shutdown cutting an answer its reader has not taken = %v; want ErrDrainTimeout naming 1 request", err)
	}
	waitServe(t, done)
	waitFor(t, "the cut connection to close", func() bool { return http.ConnState(state.Load()) == http.StateClosed })
	t.Logf("the answer to request %d of %d was cut", entered.Load(), requests)
}

// rawTCP unwraps c (the server's wrappers give it out with NetConn) down
// to its TCP connection.
func rawTCP(c net.Conn) (*net.TCPConn, bool) {
	for range 8 {
		if tc, ok := c.(*net.TCPConn); ok {
			return tc, true
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		c = nc.NetConn()
	}
	return nil, false
}
