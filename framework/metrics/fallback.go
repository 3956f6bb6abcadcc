package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/fallback"
)

// Fallbacks is a fallback.Observer that counts the degraded answers
// fallbacks served: each is a success to the caller's own callers, so no
// other series shows them (report j57b F5).
type Fallbacks struct {
	served *prometheus.CounterVec
}

var _ fallback.Observer = (*Fallbacks)(nil)

// NewFallbacks registers warren_client_fallbacks_total on r. One serves
// every client of a process.
func NewFallbacks(r prometheus.Registerer) *Fallbacks {
	f := &Fallbacks{served: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "client", Name: "fallbacks_total",
		Help: "Calls of each method of a called service that failed and were answered by a fallback instead, by the svcerr kind of the failure replaced.",
	}, []string{"service", "method", "code"})}
	r.MustRegister(f.served)
	return f
}

// FallbackServed implements fallback.Observer. The code is one of the few
// kinds fallback.Degradable lets through, so the label is bounded.
func (f *Fallbacks) FallbackServed(service, method, code string) {
	f.served.WithLabelValues(service, method, code).Inc()
}
