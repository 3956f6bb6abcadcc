package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDefaultTransport_ClosesAConnectionWhoseRequestGoesUnacknowledged:
// the default transport's connections carry TCP_USER_TIMEOUT =
// DefaultUnackedTimeout, so a request written to an instance that
// vanished without a reset fails after it instead of waiting ~15 min for
// the kernel (report j53a F1: POSTs hung for a whole 40–90 s silent cut).
func TestDefaultTransport_ClosesAConnectionWhoseRequestGoesUnacknowledged(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	tr := DefaultTransport()
	defer tr.CloseIdleConnections()
	var conn net.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { conn = i.Conn }})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		t.Fatalf("connection is a %T, want *net.TCPConn", conn)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	if err := raw.Control(func(fd uintptr) {
		got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	if want := int(DefaultUnackedTimeout / time.Millisecond); got != want {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms, want %d", got, want)
	}
}
