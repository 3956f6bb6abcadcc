package metrics

import (
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
}

var _ client.Observer = (*Client)(nil)

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
	}
	r.MustRegister(c.picks, c.retries, c.exhausted, c.ejections, c.breakerSet)
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

// InstanceReleased implements client.Observer: the instance's series go
// with it, so a mesh that replaces instances all day keeps a bounded set.
func (c *Client) InstanceReleased(service, instance string) {
	c.picks.DeleteLabelValues(service, instance)
	c.ejections.DeleteLabelValues(service, instance)
	c.breakerSet.DeleteLabelValues(service, instance)
}
