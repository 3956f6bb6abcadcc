package httpserver

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/transporttest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// Any peer can fail TLS handshakes as fast as it can connect: 300 of them
// write one line, then one summary line at the end of the interval
// with the count and the last reason, not 300 lines; every one is counted
// for the metrics.
func TestTLS_FailedHandshakesAreLoggedThrottled(t *testing.T) {
	ca := tlstest.NewCA(t)
	pair := ca.Issue("svc")
	srvTLS, err := tlsconf.Server(pair.CertFile, pair.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(http.NotFoundHandler(), WithAddr("127.0.0.1:0"), WithTLS(srvTLS))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	h := host("n")
	h.Logger = log.NewLogfmtLogger(&logs)
	h.Handshakes = transport.NewHandshakeLog(h.Logger, time.Hour) // no summary before Flush
	addr, err := s.Listen(h)
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() { s.Close() })

	const n = 300
	transporttest.FailHandshakes(t, addr.String(), n)
	deadline := time.Now().Add(10 * time.Second)
	for h.Handshakes.Failures()["http"] < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.Handshakes.Failures()["http"]; got != n {
		t.Fatalf("counted %d failed handshakes, want %d", got, n)
	}
	if got := strings.Count(logs.String(), "TLS handshake failed"); got != 1 {
		t.Fatalf("%d failed handshakes wrote %d lines, want 1 (then a summary):\n%.2000s", n, got, logs.String())
	}
	h.Handshakes.Flush()
	if !strings.Contains(logs.String(), "suppressed=299") || !strings.Contains(logs.String(), "last_err=") {
		t.Fatalf("no summary of the 299 others with the last reason:\n%s", logs.String())
	}
}
