package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/shed"
)

// Shed exports a load shedder's decisions and state, read at scrape time.
type Shed struct {
	l         *shed.Limiter
	decisions *prometheus.Desc
	limit     *prometheus.Desc
	inFlight  *prometheus.Desc
	queueLen  *prometheus.Desc
	queueTgt  *prometheus.Desc
	delay     *prometheus.Desc
	ratio     *prometheus.Desc
	waiting   *prometheus.Desc
	waitTgt   *prometheus.Desc
	conns     *prometheus.Desc
}

// NewShed registers l's series on r:
//
//	warren_shed_requests_total{outcome="admitted|shed_waiting|shed_queue|shed_limit"}
//	warren_shed_waiting, warren_shed_waiting_target, warren_shed_idle_connections,
//	warren_shed_limit, warren_shed_in_flight,
//	warren_shed_queue_length, warren_shed_queue_target,
//	warren_shed_queue_delay_seconds, warren_shed_ratio
func NewShed(r prometheus.Registerer, l *shed.Limiter) *Shed {
	name := func(n string) string { return prometheus.BuildFQName(Namespace, "shed", n) }
	s := &Shed{
		l: l,
		decisions: prometheus.NewDesc(name("requests_total"),
			"Requests the load shedder decided on, by outcome: admitted, shed_waiting (requests waiting in front of the handler past their target), shed_queue (CPU run queue past its target, a signal off by default), shed_limit (in-flight limit reached).",
			[]string{"outcome"}, nil),
		waiting:  prometheus.NewDesc(name("waiting"), "Requests waiting in front of the handler (idle connections holding an unread request) at the last reading, estimated from a sample.", nil, nil),
		waitTgt:  prometheus.NewDesc(name("waiting_target"), "Waiting requests above which requests are shed once it has lasted (0: the signal is off).", nil, nil),
		conns:    prometheus.NewDesc(name("idle_connections"), "The server's connections between requests at the last reading of waiting requests.", nil, nil),
		limit:    prometheus.NewDesc(name("limit"), "Current adaptive limit on requests in flight.", nil, nil),
		inFlight: prometheus.NewDesc(name("in_flight"), "Admitted requests not yet answered.", nil, nil),
		ratio:    prometheus.NewDesc(name("ratio"), "Share of requests shed lately (a few hundred milliseconds' average); sets the Retry-After of overload answers.", nil, nil),
		queueLen: prometheus.NewDesc(name("queue_length"), "Goroutines waiting to run at the last reading of the CPU run queue.", nil, nil),
		queueTgt: prometheus.NewDesc(name("queue_target"), "Run queue length above which requests are shed (0: the signal is off, the default).", nil, nil),
		delay:    prometheus.NewDesc(name("queue_delay_seconds"), "CPU queueing delay at the last reading (90th percentile of Go scheduling latency since the one before).", nil, nil),
	}
	r.MustRegister(s)
	return s
}

// Describe implements prometheus.Collector.
func (s *Shed) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.decisions
	ch <- s.limit
	ch <- s.inFlight
	ch <- s.queueLen
	ch <- s.queueTgt
	ch <- s.delay
	ch <- s.ratio
	ch <- s.waiting
	ch <- s.waitTgt
	ch <- s.conns
}

// Collect implements prometheus.Collector.
func (s *Shed) Collect(ch chan<- prometheus.Metric) {
	st := s.l.Stats()
	ch <- prometheus.MustNewConstMetric(s.decisions, prometheus.CounterValue, float64(st.Admitted), "admitted")
	ch <- prometheus.MustNewConstMetric(s.decisions, prometheus.CounterValue, float64(st.ShedWaiting), "shed_waiting")
	ch <- prometheus.MustNewConstMetric(s.decisions, prometheus.CounterValue, float64(st.ShedQueue), "shed_queue")
	ch <- prometheus.MustNewConstMetric(s.decisions, prometheus.CounterValue, float64(st.ShedLimit), "shed_limit")
	ch <- prometheus.MustNewConstMetric(s.limit, prometheus.GaugeValue, float64(st.Limit))
	ch <- prometheus.MustNewConstMetric(s.inFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(s.queueLen, prometheus.GaugeValue, float64(st.QueueLength))
	ch <- prometheus.MustNewConstMetric(s.queueTgt, prometheus.GaugeValue, float64(st.QueueTarget))
	ch <- prometheus.MustNewConstMetric(s.delay, prometheus.GaugeValue, st.QueueDelay.Seconds())
	ch <- prometheus.MustNewConstMetric(s.ratio, prometheus.GaugeValue, st.ShedRatio)
	ch <- prometheus.MustNewConstMetric(s.waiting, prometheus.GaugeValue, float64(st.Waiting))
	ch <- prometheus.MustNewConstMetric(s.waitTgt, prometheus.GaugeValue, float64(st.WaitingTarget))
	ch <- prometheus.MustNewConstMetric(s.conns, prometheus.GaugeValue, float64(st.Conns))
}
