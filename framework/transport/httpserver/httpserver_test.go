package httpserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/transport"
)

func host(nonce string) transport.Host {
	return transport.Host{Service: "svc", Nonce: nonce, Live: health.NewSet(0), Ready: health.NewSet(0), Logger: log.NewNopLogger()}
}

func serve(t *testing.T, h http.Handler, nonce string) (*Server, string, <-chan error) {
	t.Helper()
	s, err := New(h, WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host(nonce))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() { s.Close() })
	return s, "http://" + addr.String(), done
}

// The probe passes only where this server, with this nonce, answers.
func TestProbe_ProvesWhichProcessAnswered(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	a, aURL, _ := serve(t, ok, "nonce-a")
	_, bURL, _ := serve(t, ok, "nonce-b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Probe(ctx, aURL); err != nil {
		t.Fatalf("own endpoint: %v", err)
	}
	if err := a.Probe(ctx, bURL); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("other server's endpoint: %v, want 'answered by another process'", err)
	}
}

// Shutdown waits for an in-flight request until its context ends, then
// cuts it and says how many were left; Serve returns nil; Close after it
// (and twice) is harmless.
func TestShutdown_DrainTimeoutIsReportedAndCloseIsIdempotent(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	s, url, done := serve(t, hang, "n")
	defer close(release)
	go func() {
		if resp, err := http.Get(url + "/hang"); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("request never reached the handler")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := s.Shutdown(ctx)
	if !errors.Is(err, transport.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 HTTP request") {
		t.Fatalf("Shutdown = %v, want ErrDrainTimeout with 1 request left", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil after Shutdown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// Close after Listen, with Serve never run (a start-up that failed in its
// listen phase after this server had bound), frees the port: http.Server
// knows only the listeners Serve took.
func TestClose_WithoutServeFreesThePort(t *testing.T) {
	s, err := New(http.NotFoundHandler(), WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(host("n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatalf("the port is still bound after Close: %v", err)
	}
	ln.Close()
	if err := s.Serve(); err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestNew_RefusesBadOptions(t *testing.T) {
	h := http.NotFoundHandler()
	for name, o := range map[string]Option{
		"empty addr": WithAddr(""), "negative body": WithMaxBodyBytes(-1),
		"nil middleware": WithMiddleware(nil), "zero timeout": WithTimeouts(0, time.Second),
	} {
		if _, err := New(h, o); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(nil); err == nil {
		t.Error("New accepted a nil handler")
	}
}

// Callers drop an idle connection before the server closes it, so none
// sends a request on a connection being closed (the keep-alive race):
// the default idle timeout is above Go's http.DefaultTransport's, which
// non-Warren Go callers use (Warren's client checks its own).
func TestDefaultIdleTimeout_AboveGoDefaultTransports(t *testing.T) {
	goIdle := http.DefaultTransport.(*http.Transport).IdleConnTimeout
	if goIdle <= 0 || DefaultIdleTimeout <= goIdle {
		t.Fatalf("server idle timeout %s, http.DefaultTransport's %s: want the server's above", DefaultIdleTimeout, goIdle)
	}
}
