package httpserver

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
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
