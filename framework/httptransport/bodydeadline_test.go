package httptransport

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"
)

// slowServer is echoServer whose endpoint works for work after decoding
// the body and answers 200 only if its context was not cancelled.
func slowServer(t *testing.T, work time.Duration, opts ...HandlerOption) string {
	t.Helper()
	e := func(ctx context.Context, req any) (any, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(work):
			return req, nil
		}
	}
	rt := NewRouter()
	rt.Handle("POST /slow", NewServer(endpoint.Endpoint(e), DecodeJSON[map[string]any](), EncodeJSON, log.NewNopLogger()))
	srv := &http.Server{Handler: Handler(rt, log.NewNopLogger(), 0, opts...), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(JSONErrors(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A handler that has read its whole body and then works for longer than
// the body's idle limit keeps its context: the limits bound reading the
// body, not the work after it. (The body's last read deadline stayed on
// the connection, net/http's background read for a client hang-up hit
// it, and the handler's context was cancelled: 499 after 10 s of work.)
func TestBodyTimeouts_HandlerWorkingAfterItsBodyKeepsItsContext(t *testing.T) {
	addr := slowServer(t, 1500*time.Millisecond, WithBodyTimeouts(5*time.Second, 300*time.Millisecond))
	cl := &http.Client{Timeout: 20 * time.Second}
	defer cl.CloseIdleConnections()
	for i := range 2 { // the second on the kept-alive connection
		resp, err := cl.Post("http://"+addr+"/slow", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call %d: %d %s; want 200 (the handler's context was cancelled by the body's read deadline)", i, resp.StatusCode, b)
		}
	}
}

// BodyTimeouts on its own (an exported middleware): a handler that reads
// its body to the end and then once more (io.ReadAll, then a decoder's
// check for trailing data) keeps its context while it works on.
func TestBodyTimeouts_AReadAfterTheEndDoesNotArmADeadline(t *testing.T) {
	h := BodyTimeouts(5*time.Second, 300*time.Millisecond)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		_, _ = r.Body.Read(make([]byte, 1)) // after the end: io.EOF again
		select {
		case <-r.Context().Done():
			w.WriteHeader(StatusClientClosedRequest)
		case <-time.After(1500 * time.Millisecond):
			w.WriteHeader(http.StatusOK)
		}
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cl := &http.Client{Timeout: 20 * time.Second}
	defer cl.CloseIdleConnections()
	resp, err := cl.Post("http://"+ln.Addr().String()+"/", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d; want 200 (the handler's context was cancelled by a deadline armed after the body's end)", resp.StatusCode)
	}
}

// A handler that answers without reading its body (a refusal before
// decoding) leaves net/http to discard the rest, bytes already sent;
// with the idle limit off (0) that discard must still get its time, or
// every such answer closes the connection and the caller redials.
func TestBodyTimeouts_UnreadBodyKeepsTheConnectionWithIdleLimitOff(t *testing.T) {
	h := BodyTimeouts(30*time.Second, 0)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized) // the body is never read
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int64
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	cl := &http.Client{Timeout: 20 * time.Second}
	defer cl.CloseIdleConnections()
	body := strings.Repeat("x", 64<<10) // more than net/http reads with the headers
	for i := range 3 {
		resp, err := cl.Post("http://"+ln.Addr().String()+"/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("call %d: status %d", i, resp.StatusCode)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 calls in turn took %d connections; want 1 (the unread body's discard was given no time)", n)
	}
}
