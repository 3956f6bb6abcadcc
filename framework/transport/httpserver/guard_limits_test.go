package httpserver

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/httptransport"
)

// guardServe starts a server of ok with opts on loopback.
func guardServe(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	s, err := New(ok, append([]Option{WithAddr("127.0.0.1:0")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host("guard"))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve() }() // returns when Close below closes the server
	t.Cleanup(func() { s.Close() })
	return s, addr.String()
}

// readUntilClosed reads c until the server closes it (nil) or the bound
// passes (an error saying the server kept it open).
func readUntilClosed(c net.Conn, bound time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(bound))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("the server kept the connection open")
	}
	return nil // EOF or a reset: the server closed it
}

// TestGuard_DocumentedLimitsAreTheServersOwn pins the "Limits every server
// has" table of docs/security.md (and the HTTP timeouts of
// docs/lifecycle.md's options) on the http.Server a default Server builds:
// header read 5 s, idle keep-alive 120 s, headers 64 KiB, body 30 s in all
// and 10 s between reads, body size 1 MiB. Each is also what the
// constants say, so a constant changed and one no longer wired in both
// fail here.
func TestGuard_DocumentedLimitsAreTheServersOwn(t *testing.T) {
	s, _ := guardServe(t)
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	if srv.ReadHeaderTimeout != 5*time.Second || srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 64<<10 {
		t.Errorf("http.Server: ReadHeaderTimeout %s, IdleTimeout %s, MaxHeaderBytes %d; docs say 5s, 2m0s, 65536",
			srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if s.o.body != 30*time.Second || s.o.bodyIdle != 10*time.Second {
		t.Errorf("body timeouts %s in all, %s idle; docs say 30s and 10s", s.o.body, s.o.bodyIdle)
	}
	if httptransport.DefaultBodyTimeout != 30*time.Second || httptransport.DefaultBodyIdleTimeout != 10*time.Second || httptransport.DefaultMaxBody != 1<<20 {
		t.Errorf("httptransport defaults: body %s, idle %s, max %d; docs say 30s, 10s, 1 MiB",
			httptransport.DefaultBodyTimeout, httptransport.DefaultBodyIdleTimeout, httptransport.DefaultMaxBody)
	}
}

// TestGuard_HeaderReadTimeoutClosesATricklingClient: a client that sends
// part of its headers and stops (Slowloris) loses its connection at the
// header read timeout, here 300 ms (WithTimeouts); without it the
// connection is held as long as the client likes.
func TestGuard_HeaderReadTimeoutClosesATricklingClient(t *testing.T) {
	_, addr := guardServe(t, WithTimeouts(300*time.Millisecond, time.Minute))
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	if err := readUntilClosed(c, 20*time.Second); err != nil {
		t.Fatalf("a client trickling its headers: %v 20s after (header read timeout 300ms)", err)
	}
}

// TestGuard_IdleTimeoutClosesAnIdleKeptAliveConnection: a kept-alive
// connection that sends nothing after its answer is closed at the idle
// timeout, here 300 ms (WithTimeouts); without it, never.
func TestGuard_IdleTimeoutClosesAnIdleKeptAliveConnection(t *testing.T) {
	_, addr := guardServe(t, WithTimeouts(10*time.Second, 300*time.Millisecond))
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first answer %d (close %v); want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("an idle kept-alive connection was still open 20s after its answer (idle timeout 300ms)")
		}
	}
}

// TestGuard_HeadersOver64KiBAre431JSON: a request whose headers pass
// 64 KiB is refused 431 with Warren's JSON error (docs/security.md), not
// served, as it is under net/http's own 1 MiB default.
func TestGuard_HeadersOver64KiBAre431JSON(t *testing.T) {
	_, addr := guardServe(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 80<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(string(body), "headers_too_large") {
		t.Fatalf("80 KiB of headers answered %d %q; want 431 headers_too_large", resp.StatusCode, body)
	}
}

// TestGuard_ProbeDoesNotFollowARedirect: the self-check's answer must come
// from the advertised address itself. An advertised address where another
// server redirects to this one (a wrong --advertise in front of a proxy)
// fails the probe, though following the redirect would reach this
// process and its nonce.
func TestGuard_ProbeDoesNotFollowARedirect(t *testing.T) {
	s, addr := guardServe(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+addr+r.URL.Path, http.StatusFound)
	}))
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Probe(ctx, "http://"+addr); err != nil {
		t.Fatalf("control: own address: %v", err)
	}
	if err := s.Probe(ctx, other.URL); err == nil {
		t.Fatal("the probe of an address that only redirects here passed; want it refused")
	}
}
