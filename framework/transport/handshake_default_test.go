package transport

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/internal/syncbuf"
)

// NewHandshakeLog(logger, 0) takes DefaultHandshakeLogEvery: a second
// failure a few milliseconds after the first is held for the summary,
// not logged on its own.
func TestHandshakeLog_ZeroIntervalMeansTheDefault(t *testing.T) {
	var logs syncbuf.Buffer
	h := NewHandshakeLog(log.NewLogfmtLogger(&logs), 0)
	defer h.Flush()
	from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4711}
	h.Failed("http", from, errors.New("tls: bad record MAC"))
	time.Sleep(5 * time.Millisecond)
	h.Failed("http", from, errors.New("tls: bad record MAC"))
	if got := strings.Count(logs.String(), "\n"); got != 1 {
		t.Fatalf("%d lines within 5 ms with the default interval (%s), want 1:\n%s", got, DefaultHandshakeLogEvery, logs.String())
	}
}
