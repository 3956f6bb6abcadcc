package transport

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// While failures go on, the log writes the first at once and, at the end
// of the interval, one line with how many followed and the last reason;
// after a quiet interval the next failure is logged at once again. A peer
// that connects and leaves (EOF) is not a failure.
func TestHandshakeLog_FirstThenOneSummaryPerInterval(t *testing.T) {
	var logs syncbuf.Buffer
	h := NewHandshakeLog(log.NewLogfmtLogger(&logs), 50*time.Millisecond)
	from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4711}
	h.Failed("http", from, errors.New("tls: first record does not look like a TLS handshake"))
	h.Failed("grpc", from, errors.New("tls: bad record MAC"))
	h.Failed("grpc", from, errors.New("tls: client didn't provide a certificate"))
	h.Failed("http", from, io.EOF) // connected and left: not a failure
	h.Failed("http", from, net.ErrClosed)
	if got := strings.Count(logs.String(), "\n"); got != 1 {
		t.Fatalf("%d lines at once, want 1:\n%s", got, logs.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "suppressed=3") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if l := logs.String(); !strings.Contains(l, "suppressed=3") || !strings.Contains(l, `last_err="use of closed network connection"`) {
		t.Fatalf("no summary of the 3 others with the last reason at the interval's end:\n%s", l)
	}
	time.Sleep(60 * time.Millisecond) // a quiet interval
	h.Failed("grpc", from, errors.New("tls: unknown certificate authority"))
	if got := strings.Count(logs.String(), "msg=\"TLS handshake failed\""); got != 2 {
		t.Fatalf("after a quiet interval the failure is not logged at once:\n%s", logs.String())
	}
	if f := h.Failures(); f["http"] != 2 || f["grpc"] != 3 {
		t.Fatalf("Failures() = %v, want http 2, grpc 3", f)
	}
	h.Flush() // nothing pending: no line
	if got := strings.Count(logs.String(), "\n"); got != 3 {
		t.Fatalf("%d lines, want 3:\n%s", got, logs.String())
	}
}
