package httptransport

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/svcerr"
)

// echoServer is a real http.Server on loopback whose one route decodes a
// JSON body; it serves through JSONErrors, as the framework's server does.
func echoServer(t *testing.T, opts ...HandlerOption) (*http.Server, string) {
	t.Helper()
	e := func(_ context.Context, req any) (any, error) { return req, nil }
	rt := NewRouter()
	rt.Handle("POST /echo", NewServer(endpoint.Endpoint(e), DecodeJSON[map[string]any](), EncodeJSON, log.NewNopLogger()))
	srv := &http.Server{Handler: Handler(rt, log.NewNopLogger(), 0, opts...), ReadHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 4 << 10}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(JSONErrors(ln))
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second)) // the test's own bound
	t.Cleanup(func() { c.Close() })
	return c
}

// readJSONAnswer reads one response and checks that it is a JSON error.
func readJSONAnswer(t *testing.T, c net.Conn, wantStatus int) ErrorBody {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body ErrorBody
	if resp.StatusCode != wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || json.Unmarshal(b, &body) != nil || body.Error == "" {
		t.Fatalf("answer %d %s %q; want %d with a JSON error body", resp.StatusCode, resp.Header.Get("Content-Type"), b, wantStatus)
	}
	return body
}

// A client that starts a chunked body and stops sending gets 408 once the
// idle limit passes, instead of holding its connection for good.
func TestBodyTimeouts_AStalledBodyIsAnsweredWith408(t *testing.T) {
	_, addr := echoServer(t, WithBodyTimeouts(2*time.Second, 300*time.Millisecond))
	c := dial(t, addr)
	fmt.Fprint(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n")
	body := readJSONAnswer(t, c, http.StatusRequestTimeout)
	if body.Code != "body_timeout" {
		t.Fatalf("code %q", body.Code)
	}
}

// The drain at shutdown never waits on a client that stopped sending:
// Shutdown returns nil once the body limit has cut that request off,
// where before it waited for its whole deadline and failed.
func TestBodyTimeouts_ShutdownDoesNotWaitForAStalledClient(t *testing.T) {
	srv, addr := echoServer(t, WithBodyTimeouts(time.Second, 500*time.Millisecond))
	c := dial(t, addr)
	fmt.Fprint(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":")
	time.Sleep(100 * time.Millisecond) // the request is in its handler, reading
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with only a stalled client left = %v; want nil (cut off by the body limit)", err)
	}
}

// What net/http answers by itself, before any handler, is JSON too.
func TestJSONErrors_NetHTTPsOwnAnswersAreJSON(t *testing.T) {
	_, addr := echoServer(t)
	for _, tc := range []struct {
		name, req string
		status    int
		code      string
	}{
		{"headers too large", "GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431, "headers_too_large"},
		{"malformed request line", "GARBAGE\r\n\r\n", 400, "malformed_request"},
		{"bad header", "GET /echo HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400, "malformed_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			fmt.Fprint(c, tc.req)
			if body := readJSONAnswer(t, c, tc.status); body.Code != tc.code {
				t.Fatalf("code %q, want %q", body.Code, tc.code)
			}
		})
	}
}

// The mux's path-cleaning redirects keep their status and Location and
// carry a JSON body.
func TestRouter_PathCleaningRedirectsAreJSON(t *testing.T) {
	_, addr := echoServer(t)
	for _, path := range []string{"//echo", "/x/../echo"} {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var body ErrorBody
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") == "" || json.Unmarshal(b, &body) != nil || body.Code != "redirect" {
			t.Fatalf("GET %s = %d Location %q body %q; want a redirect with a JSON body", path, resp.StatusCode, resp.Header.Get("Location"), b)
		}
	}
}

// JSONErrors' connections give out the connection they wrap, so that what
// needs the socket (the load shedder's count of waiting requests) finds
// it through them.
func TestJSONErrors_ConnectionsGiveOutTheirSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wl := JSONErrors(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := wl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	nc, ok := sc.(interface{ NetConn() net.Conn })
	if !ok {
		t.Fatalf("%T has no NetConn", sc)
	}
	if _, ok := nc.NetConn().(*net.TCPConn); !ok {
		t.Fatalf("NetConn() is %T, want the *net.TCPConn", nc.NetConn())
	}
}

// A body that stalls while the method itself reads it (a decoder of the
// service's own that hands the method r.Body) is answered 408 with
// body_timeout_in_handler: the method may have acted on part of it, so a
// client must not take it for "no method ran" (body_timeout, which only
// Warren's decoder gives).
func TestBodyTimeouts_AStallWhileTheMethodReadsIsAnsweredInHandler(t *testing.T) {
	read := func(_ context.Context, req any) (any, error) {
		_, err := io.Copy(io.Discard, req.(io.Reader))
		return nil, err
	}
	rawBody := func(_ context.Context, r *http.Request) (any, error) { return r.Body, nil }
	rt := NewRouter()
	rt.Handle("POST /upload", NewServer(read, rawBody, EncodeJSON, log.NewNopLogger()))
	srv := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0, WithBodyTimeouts(2*time.Second, 300*time.Millisecond)))
	t.Cleanup(srv.Close)
	c := dial(t, srv.Listener.Addr().String())
	fmt.Fprint(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
	body := readJSONAnswer(t, c, http.StatusRequestTimeout)
	if body.Code != CodeBodyTimeoutInHandler {
		t.Fatalf("code %q, want %q", body.Code, CodeBodyTimeoutInHandler)
	}
}

// Both of a real server's 408s — the decoder's body_timeout and the
// method's body_timeout_in_handler — read on the caller's side as
// Unavailable, the kind of a call's transport failure, not Internal (a
// bug of the service: 500 when passed on) nor DeadlineExceeded (the
// caller's deadline). A handler's own error with status 408 gets that
// kind's code.
func TestBodyTimeouts_BothAnswersReadAsUnavailable(t *testing.T) {
	_, decoding := echoServer(t, WithBodyTimeouts(2*time.Second, 300*time.Millisecond))
	read := func(_ context.Context, req any) (any, error) {
		_, err := io.Copy(io.Discard, req.(io.Reader))
		return nil, err
	}
	rawBody := func(_ context.Context, r *http.Request) (any, error) { return r.Body, nil }
	rt := NewRouter()
	rt.Handle("POST /echo", NewServer(read, rawBody, EncodeJSON, log.NewNopLogger()))
	reading := httptest.NewServer(Handler(rt, log.NewNopLogger(), 0, WithBodyTimeouts(2*time.Second, 300*time.Millisecond)))
	t.Cleanup(reading.Close)

	for _, tc := range []struct{ name, addr, code string }{
		{"the decoder reads", decoding, CodeBodyTimeout},
		{"the method reads", reading.Listener.Addr().String(), CodeBodyTimeoutInHandler},
	} {
		c := dial(t, tc.addr)
		fmt.Fprint(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n")
		body := readJSONAnswer(t, c, http.StatusRequestTimeout)
		if body.Code != tc.code {
			t.Fatalf("%s: code %q, want %q", tc.name, body.Code, tc.code)
		}
	}
	if k := KindForStatus(http.StatusRequestTimeout); k != svcerr.Unavailable {
		t.Fatalf("a client reads the 408 as %s, want %s", k, svcerr.Unavailable)
	}
	if st, body := Classify(statusCoder(http.StatusRequestTimeout)); st != http.StatusRequestTimeout || body.Code != string(svcerr.Unavailable) {
		t.Fatalf("a handler's 408 is classified %d %+v; want 408 with code %q", st, body, svcerr.Unavailable)
	}
}

// statusCoder is an error with an HTTP status of its own (go-kit's
// StatusCoder), as a handler may return.
type statusCoder int

func (e statusCoder) Error() string   { return http.StatusText(int(e)) }
func (e statusCoder) StatusCode() int { return int(e) }
