package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/outlier"
)

// Client is a client.Observer that keeps the client series. One Client
// serves every service client of a process.
type Client struct {
	picks      *prometheus.CounterVec
	retries    *prometheus.CounterVec
	exhausted  *prometheus.CounterVec
	ejections  *prometheus.CounterVec
	breakerSet *prometheus.GaugeVec
	methodDur  *prometheus.HistogramVec
	methodErrs *prometheus.CounterVec
}

var (
	_ client.Observer       = (*Client)(nil)
	_ client.MethodObserver = (*Client)(nil)
)

// NewClient registers the client series on r.
func NewClient(r prometheus.Registerer) *Client {
	c := &Client{
		picks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "picks_total",
			Help: "Attempts sent, by called service and the instance the balancer picked.",
		}, []string{"service", "instance"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "retries_total",
			Help: "Attempts after the first, by called service.",
		}, []string{"service"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "retry_budget_exhausted_total",
			Help: "Calls that wanted another attempt and were refused one by the retry budget.",
		}, []string{"service"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "ejections_total",
			Help: "Times outlier detection took an instance out of rotation.",
		}, []string{"service", "instance"}),
		breakerSet: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "client", Name: "breaker_state",
			Help: "Outlier breaker of each instance: 0 closed (in rotation), 1 open (ejected), 2 half-open (probing).",
		}, []string{"service", "instance"}),
		methodDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "client", Name: "method_duration_seconds",
			Help:    "Calls of each method of a called service, from the caller's side: every attempt and wait included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "method"}),
		methodErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "method_errors_total",
			Help: "Failed calls of each method, by the error's code (svcerr code, HTTP status, or unavailable / deadline_exceeded / canceled).",
		}, []string{"service", "method", "code"}),
	}
	r.MustRegister(c.picks, c.retries, c.exhausted, c.ejections, c.breakerSet, c.methodDur, c.methodErrs)
	return c
}

// Picked implements client.Observer.
func (c *Client) Picked(service, instance string) {
	c.picks.WithLabelValues(service, instance).Inc()
}

// Retried implements client.Observer.
func (c *Client) Retried(service string) { c.retries.WithLabelValues(service).Inc() }

// RetryBudgetExhausted implements client.Observer.
func (c *Client) RetryBudgetExhausted(service string) { c.exhausted.WithLabelValues(service).Inc() }

// BreakerChanged implements client.Observer.
func (c *Client) BreakerChanged(service, instance string, _, to outlier.State) {
	if to == outlier.Open {
		c.ejections.WithLabelValues(service, instance).Inc()
	}
	c.breakerSet.WithLabelValues(service, instance).Set(float64(to))
}

// MethodDone implements client.MethodObserver.
func (c *Client) MethodDone(service, method, code string, d time.Duration) {
	c.methodDur.WithLabelValues(service, method).Observe(d.Seconds())
	if code != "ok" {
		c.methodErrs.WithLabelValues(service, method, code).Inc()
	}
}

// InstanceReleased implements client.Observer: the instance's series go
// with it, so a mesh that replaces instances all day keeps a bounded set.
func (c *Client) InstanceReleased(service, instance string) {
	c.picks.DeleteLabelValues(service, instance)
	c.ejections.DeleteLabelValues(service, instance)
	c.breakerSet.DeleteLabelValues(service, instance)
}
