package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/tcpopt"
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
	got, err := tcpopt.UserTimeoutOf(conn)
	if err != nil {
		t.Fatal(err)
	}
	if got != DefaultUnackedTimeout {
		t.Fatalf("TCP_USER_TIMEOUT = %v, want %v", got, DefaultUnackedTimeout)
	}
}
