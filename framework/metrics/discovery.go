package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/registry"
)

// Discovery is a registry.Observer that keeps the discovery series.
type Discovery struct {
	restarts  *prometheus.CounterVec
	instances *prometheus.GaugeVec
	skipped   *prometheus.GaugeVec
	failover  *prometheus.GaugeVec

	// Several Failovers of one service in a process (an HTTP and a gRPC
	// client, the edge, the mesh page) share a source's series, so it
	// counts them: 1 while any has the source active. Set by the last to
	// report, one starting wiped a sibling's 1 and one stopped left its
	// own (audit m4).
	active owners[serviceSource]
}

type serviceSource struct{ service, source string }

var (
	_ registry.Observer                = (*Discovery)(nil)
	_ registry.FailoverObserver        = (*Discovery)(nil)
	_ registry.FailoverSourcesObserver = (*Discovery)(nil)
)

// NewDiscovery registers the discovery series on r.
func NewDiscovery(r prometheus.Registerer) *Discovery {
	m := &Discovery{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "registry", Name: "watch_restarts_total",
			Help: "Times the watch (etcd) or blocking-query loop (Consul) of a service broke off and started over.",
		}, []string{"service"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "registry", Name: "instances",
			Help: "Instances of a service that discovery shows now.",
		}, []string{"service"}),
		skipped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "registry", Name: "skipped_records",
			Help: "Records under a service's prefix that discovery does not serve (unreadable, mismatched, too large, without a lease).",
		}, []string{"service"}),
		failover: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "registry", Name: "failover_source",
			Help: "1 for the datacenter or region prefix whose instances of a service callers use now (also for the one spilled to while callers find every local instance failing), 0 for its other failover sources.",
		}, []string{"service", "source"}),
	}
	r.MustRegister(m.restarts, m.instances, m.skipped, m.failover)
	return m
}

// FailoverSource implements registry.FailoverObserver: active counts one
// more Failover with the source active, !active one fewer (none below
// 0); the series is 1 while the count is above 0. ReportFailover tells
// each Failover's changes once and gives its sources back when it stops.
func (m *Discovery) FailoverSource(service, source string, active bool) {
	m.active.report(serviceSource{service, source}, active, func(any bool) {
		m.failover.WithLabelValues(service, source).Set(oneIf(any))
	})
}

// FailoverSources implements registry.FailoverSourcesObserver: a source
// with no series yet gets one at 0, for dashboards; one another Failover
// has active keeps its 1.
func (m *Discovery) FailoverSources(service string, sources []string) {
	for _, s := range sources {
		m.failover.WithLabelValues(service, s)
	}
}

// WatchRestarted implements registry.Observer.
func (m *Discovery) WatchRestarted(service string, _ error) {
	m.restarts.WithLabelValues(service).Inc()
}

// Instances implements registry.Observer. A service's restart counter is
// made here too, at 0, when its first set is reported: a dashboard then
// shows 0 rather than no data, and increase() sees the first restart
// (report j47c F14).
func (m *Discovery) Instances(service string, n int) {
	m.restarts.WithLabelValues(service)
	m.instances.WithLabelValues(service).Set(float64(n))
}

// Skipped implements registry.Observer.
func (m *Discovery) Skipped(service string, n int) {
	m.skipped.WithLabelValues(service).Set(float64(n))
}

// registration reads a registrar's Status at scrape time.
type registration struct {
	sr                 registry.StatusReporter
	registered, reregs *prometheus.Desc
}

// RegisterStatus adds this process's registration, read from sr at each
// scrape, to r: warren_registry_registered (1 while the backend holds the
// instance) and warren_registry_reregistrations_total, labelled with the
// service name.
func RegisterStatus(r prometheus.Registerer, service string, sr registry.StatusReporter) {
	labels := prometheus.Labels{"service": service}
	r.MustRegister(&registration{
		sr: sr,
		registered: prometheus.NewDesc(Namespace+"_registry_registered",
			"1 while this process's instance is registered with the backend, else 0 (retrying, withdrawn).", nil, labels),
		reregs: prometheus.NewDesc(Namespace+"_registry_reregistrations_total",
			"Times the backend lost this process's instance and it was registered again.", nil, labels),
	})
}

func (c *registration) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.registered
	ch <- c.reregs
}

func (c *registration) Collect(ch chan<- prometheus.Metric) {
	st := c.sr.Status()
	ch <- prometheus.MustNewConstMetric(c.registered, prometheus.GaugeValue, oneIf(st.State == registry.StateRegistered))
	ch <- prometheus.MustNewConstMetric(c.reregs, prometheus.CounterValue, float64(st.Reregistrations))
}

// oneIf is a yes-or-no gauge's value: 1 for yes, 0 for no.
func oneIf(yes bool) float64 {
	if yes {
		return 1
	}
	return 0
}
