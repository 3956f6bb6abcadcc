package httptransport

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-kit/log"
)

// TestGuard_AnUnreadBodyThatStallsClosesTheConnectionSoon: docs/http.md
// says a body the handler left unread gets 1 s to be discarded (also with
// the idle limit off). A client that declared a body, sent part of it and
// stopped must not hold the connection for the rest of the body limit
// (here an hour, the idle limit off): the server closes it within
// seconds. The bound (15 s) is generous; without the 1 s rule the
// connection stays open for the whole hour.
func TestGuard_AnUnreadBodyThatStallsClosesTheConnectionSoon(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "not read") })
	srv := httptest.NewServer(Handler(h, log.NewNopLogger(), 0, WithBodyTimeouts(time.Hour, 0)))
	defer srv.Close()
	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nabc"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answer %d, want 200", resp.StatusCode)
	}
	_, err = io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a client that stalled in a body the handler left unread still held its connection 15s later; docs: 1s to discard it")
	}
}
