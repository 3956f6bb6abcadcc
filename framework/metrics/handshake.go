package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// HandshakeCounts is what counts failed TLS handshakes per transport
// (transport.HandshakeLog).
type HandshakeCounts interface {
	Failures() map[string]uint64
}

// Handshakes exports failed TLS handshakes, read at scrape time.
type Handshakes struct {
	src  HandshakeCounts
	desc *prometheus.Desc
}

// NewHandshakes registers src's count on r:
//
//	warren_tls_handshake_failures_total{transport="http|grpc"}
//
// The log shows the first failure and then a summary per interval; this
// counts every one, for a rate and an alert.
func NewHandshakes(r prometheus.Registerer, src HandshakeCounts) *Handshakes {
	h := &Handshakes{
		src: src,
		desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "tls", "handshake_failures_total"),
			"TLS handshakes the server's transports failed (no or a refused client certificate, not TLS at all, plain HTTP on the HTTPS port), by transport. A peer that connects and leaves is not counted.",
			[]string{"transport"}, nil),
	}
	r.MustRegister(h)
	return h
}

// Describe implements prometheus.Collector.
func (h *Handshakes) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect implements prometheus.Collector.
func (h *Handshakes) Collect(ch chan<- prometheus.Metric) {
	counts := h.src.Failures()
	for _, t := range []string{"http", "grpc"} { // present from the start, for rates and alerts
		if _, ok := counts[t]; !ok {
			counts[t] = 0
		}
	}
	for t, n := range counts {
		ch <- prometheus.MustNewConstMetric(h.desc, prometheus.CounterValue, float64(n), t)
	}
}
