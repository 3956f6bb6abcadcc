package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/climit"
)

var _ client.LimitObserver = (*Client)(nil)

// clientLimits is the collector of the client concurrency limits' state,
// read at every scrape from the clients that handed it over
// (client.LimitObserver):
//
//	warren_client_concurrency_limit{service}, warren_client_in_flight{service}
//
// Each is summed over the process's live clients of the service (usually
// one); a closed client is dropped at the next scrape, and a service with
// no live client has no series.
type clientLimits struct {
	limit, inFlight *prometheus.Desc

	mu    sync.Mutex
	stats map[string][]func() (climit.Stats, bool)
}

func newClientLimits() *clientLimits {
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "client", n) }
	return &clientLimits{
		limit: prometheus.NewDesc(name("concurrency_limit"),
			"Current adaptive limit on calls in flight to the called service (framework/climit); calls past it fail at once with code client_limited.",
			[]string{"service"}, nil),
		inFlight: prometheus.NewDesc(name("in_flight"),
			"Calls in flight to the called service that its concurrency limit admitted.",
			[]string{"service"}, nil),
		stats: map[string][]func() (climit.Stats, bool){},
	}
}

// ClientLimit implements client.LimitObserver.
func (c *Client) ClientLimit(service string, stats func() (climit.Stats, bool)) {
	c.limits.mu.Lock()
	c.limits.stats[service] = append(c.limits.stats[service], stats)
	c.limits.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (l *clientLimits) Describe(ch chan<- *prometheus.Desc) {
	ch <- l.limit
	ch <- l.inFlight
}

// Collect implements prometheus.Collector.
func (l *clientLimits) Collect(ch chan<- prometheus.Metric) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for service, fs := range l.stats {
		var limit, inFlight int64
		live := fs[:0]
		for _, f := range fs {
			st, ok := f()
			if !ok {
				continue
			}
			live = append(live, f)
			limit += st.Limit
			inFlight += st.InFlight
		}
		clear(fs[len(live):])
		if len(live) == 0 {
			delete(l.stats, service)
			continue
		}
		l.stats[service] = live
		ch <- prometheus.MustNewConstMetric(l.limit, prometheus.GaugeValue, float64(limit), service)
		ch <- prometheus.MustNewConstMetric(l.inFlight, prometheus.GaugeValue, float64(inFlight), service)
	}
}
