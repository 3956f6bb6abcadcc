package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type counts map[string]uint64

func (c counts) Failures() map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Every failed handshake is counted, per transport, both present from the
// start.
func TestHandshakes_CountsPerTransport(t *testing.T) {
	r := prometheus.NewRegistry()
	NewHandshakes(r, counts{"http": 300})
	want := `
# HELP warren_tls_handshake_failures_total TLS handshakes the server's transports failed (no or a refused client certificate, not TLS at all, plain HTTP on the HTTPS port), by transport. A peer that connects and leaves is not counted.
# TYPE warren_tls_handshake_failures_total counter
warren_tls_handshake_failures_total{transport="grpc"} 0
warren_tls_handshake_failures_total{transport="http"} 300
`
	if err := testutil.GatherAndCompare(r, strings.NewReader(want), "warren_tls_handshake_failures_total"); err != nil {
		t.Fatal(err)
	}
}
