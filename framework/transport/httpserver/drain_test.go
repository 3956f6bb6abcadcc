package httpserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/transport"
)

// A drain that runs out of time with no request in flight cut nothing:
// a connection that has sent no request yet (a caller's connection just
// opened, a TCP health check, a TLS handshake under way) is no overrun,
// and Shutdown returns nil, as grpcserver's does. (net/http waits up to
// 5 s before it treats such a connection as idle, so a drain given less
// failed with "0 HTTP request(s) still in flight".)
func TestShutdown_ConnectionWithoutARequestIsNoOverrun(t *testing.T) {
	s, addr, conns, done := serveCounting(t, http.NotFoundHandler())
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the server to take the connection", func() bool { return conns.Load() > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with only a connection that sent nothing = %v; want nil", err)
	}
	waitServe(t, done)
}

// serveCounting is serve with a count of the connections the server
// took (http.ConnState StateNew), so a test knows one is open.
func serveCounting(t *testing.T, h http.Handler, opts ...Option) (*Server, string, *atomic.Int64, <-chan error) {
	t.Helper()
	s, err := New(h, append([]Option{WithAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host("n"))
	if err != nil {
		t.Fatal(err)
	}
	conns := new(atomic.Int64)
	prev := s.srv.ConnState
	s.srv.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
		if prev != nil {
			prev(c, st)
		}
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() { s.Close() })
	return s, addr.String(), conns, done
}

// waitServe waits for Serve's result and wants nil.
func waitServe(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A hijacked connection (a websocket-style handler) is a call in flight
// like any other: the drain waits for its handler, then cuts it and says
// so, and Close cuts it at once. net/http's Shutdown and Close leave
// hijacked connections alone, so they went on being served, by a
// goroutine nobody owned, after the server had stopped.
func TestShutdown_HijackedConnectionIsDrainedThenCut(t *testing.T) {
	s, addr, _, done := serveCounting(t, hijackEcho(t))
	echoOnce := upgrade(t, addr)
	if err := echoOnce(); err != nil {
		t.Fatalf("echo before the drain: %v", err)
	}
	if n := s.InFlight(); n != 1 {
		t.Fatalf("InFlight = %d with the hijacking handler running, want 1", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx)
	if !errors.Is(err, transport.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 HTTP request(s) and 1 hijacked connection(s)") {
		t.Fatalf("Shutdown with a hijacked connection served on = %v; want ErrDrainTimeout naming 1 request", err)
	}
	waitServe(t, done)
	if err := echoOnce(); err == nil {
		t.Fatal("the hijacked connection is still served after the drain cut it")
	}
	waitFor(t, "the hijacking handler to return", func() bool { return s.InFlight() == 0 })
}

// Close cuts hijacked connections at once: the server stops serving.
func TestClose_CutsHijackedConnections(t *testing.T) {
	s, addr, _, done := serveCounting(t, hijackEcho(t))
	echoOnce := upgrade(t, addr)
	if err := echoOnce(); err != nil {
		t.Fatalf("echo before Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitServe(t, done)
	if err := echoOnce(); err == nil {
		t.Fatal("the hijacked connection is still served after Close")
	}
	waitFor(t, "the hijacking handler to return", func() bool { return s.InFlight() == 0 })
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// hijackEcho is a websocket-style handler: it hijacks the connection,
// answers 101 and echoes lines until the connection fails.
func hijackEcho(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = rw.WriteString(line)
			if rw.Flush() != nil {
				return
			}
		}
	})
}

// upgrade opens a connection to hijackEcho and returns a function that
// sends a line and checks it comes back.
func upgrade(t *testing.T, addr string) func() error {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second)) // the test's own bound
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return func() error {
		if _, err := fmt.Fprint(c, "ping\n"); err != nil {
			return err
		}
		line, err := br.ReadString('\n')
		if err == nil && line != "ping\n" {
			err = fmt.Errorf("echoed %q", line)
		}
		return err
	}
}

// Shutdown before Serve has begun: Serve then returns nil and frees the
// port; a second Shutdown and a Close after it return nil.
func TestShutdown_BeforeServeAndTwice(t *testing.T) {
	s, err := New(http.NotFoundHandler(), WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host("n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown before Serve = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	waitServe(t, done)
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatalf("the port is still bound after Shutdown and Serve: %v", err)
	}
	ln.Close()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Shutdown = %v", err)
	}
}

// Close before Listen (an App that aborted before this transport's turn
// to bind) leaves nothing to bind: Listen after it fails and leaves the
// port free, where before it bound a port that nothing could release
// (Serve returned at once, Close was already done).
func TestListen_AfterCloseFailsAndBindsNothing(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	s, err := New(http.NotFoundHandler(), WithAddr(addr))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Listen(host("n")); err == nil {
		t.Error("Listen after Close succeeded")
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Close = %v, want nil", err)
	}
	_ = s.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the port is bound after Close, Listen, Serve and Close: %v", err)
	}
	ln.Close()
}

// A handler learns that the drain has begun (transport.Draining) and ends
// its websocket on its own terms, with a last message: the drain then
// ends without cutting anything, long before its timeout.
func TestShutdown_TellsHandlersTheDrainBegan(t *testing.T) {
	if transport.Draining(context.Background()) != nil {
		t.Fatal("Draining outside a served call is not nil")
	}
	s, addr, _, done := serveCounting(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer c.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello\n")
		_ = rw.Flush()
		select {
		case <-transport.Draining(r.Context()):
			_, _ = rw.WriteString("going away\n")
			_ = rw.Flush()
		case <-time.After(30 * time.Second): // past the drain's timeout below
		}
	}))
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("first message %q, %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a websocket that ends when told = %v; want nil, nothing cut", err)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "going away\n" {
		t.Fatalf("last message %q, %v; want the handler's going away", line, err)
	}
	waitServe(t, done)
}
