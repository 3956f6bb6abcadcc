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

// TestGuard_DefaultHandshakeLogIntervalIs10s: docs/security.md says
// failed TLS handshakes are logged the first at once, then at most one
// line per 10 s. Two failures 1.5 s apart under the default interval give
// one line (the second waits for the interval's summary); an interval
// shorter than documented logs both. TestHandshakeLog_ZeroIntervalMeansTheDefault
// puts 5 ms between them, which a 1 s interval passes too.
func TestGuard_DefaultHandshakeLogIntervalIs10s(t *testing.T) {
	var logs syncbuf.Buffer
	h := NewHandshakeLog(log.NewLogfmtLogger(&logs), 0)
	defer h.Flush()
	from := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4711}
	h.Failed("http", from, errors.New("tls: bad record MAC"))
	time.Sleep(1500 * time.Millisecond)
	h.Failed("http", from, errors.New("tls: bad record MAC"))
	if got := strings.Count(logs.String(), "\n"); got != 1 {
		t.Fatalf("%d lines for two failures 1.5s apart with the default interval (%s), want 1 (docs: at most one per 10s):\n%s",
			got, DefaultHandshakeLogEvery, logs.String())
	}
}
