package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// The code label of warren_client_method_errors_total comes from the
// called peer's answer, which this process does not control: a peer that
// puts an ID in its codes would make a series per call. So the label is
// bounded.
const (
	// MaxCodesPerMethod is how many distinct codes one service's method
	// keeps as label values, first come first kept, besides the
	// well-known ones (the svcerr kinds, "overloaded", "canceled"),
	// which are always kept.
	MaxCodesPerMethod = 16
	// OtherCode is the label value of codes past MaxCodesPerMethod, and
	// of codes that are no short lower-case identifier (or HTTP status).
	OtherCode = "other"
	// maxCodeLen bounds a code kept as a label value.
	maxCodeLen = 48
)

// wellKnown says whether code is one of the codes kept whatever a peer
// sent before: the kinds a caller alerts on must not be folded away by a
// peer's flood of made-up codes.
func wellKnown(code string) bool {
	return svcerr.Kind(code).Known() || code == svcerr.CodeOverloaded || code == "canceled"
}

// codeShaped says whether code may be a label value: a lower-case
// identifier (letters, digits, '_', starting with a letter) of at most
// maxCodeLen bytes, or a three-digit HTTP status.
func codeShaped(code string) bool {
	if len(code) == 3 && code[0] >= '1' && code[0] <= '5' && isDigit(code[1]) && isDigit(code[2]) {
		return true
	}
	if code == "" || len(code) > maxCodeLen || code[0] < 'a' || code[0] > 'z' {
		return false
	}
	for i := range len(code) {
		if c := code[i]; !(c >= 'a' && c <= 'z' || isDigit(c) || c == '_') {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

type serviceMethod struct{ service, method string }

// Client is a client.Observer that keeps the client series. One Client
// serves every service client of a process.
type Client struct {
	picks      *prometheus.CounterVec
	retries    *prometheus.CounterVec
	hedges     *prometheus.CounterVec
	exhausted  *prometheus.CounterVec
	ejections  *prometheus.CounterVec
	svcEjects  *prometheus.CounterVec
	stale      *prometheus.GaugeVec
	breakerSet *prometheus.GaugeVec
	methodDur  *prometheus.HistogramVec
	methodErrs *prometheus.CounterVec
	limits     *clientLimits

	mu    sync.Mutex
	codes map[serviceMethod]map[string]bool // the codes kept per method, well-known ones aside
	// Clients of the service serving their snapshot: several clients of
	// one service (HTTP and gRPC) share its series, and the first to stop
	// set 0 while another still served stale (audit m4).
	staleN owners[string]
	// Clients holding each instance (client.InstanceObserver): its
	// series are shared by them and go with the last one's release.
	// Deleted at each client's release, they came back from 0 (a counter
	// reset) while another client still sent to the instance (audit o6
	// R1).
	holders owners[serviceInstance]
	// The holders' breakers of each instance that are not closed, for
	// breaker_state: the worst state among them, where each client's
	// change overwrote the others'. Guarded by bmu; taken inside
	// holders' lock, never around it.
	bmu      sync.Mutex
	breakers map[serviceInstance]*breakerCount
}

type serviceInstance struct{ service, instance string }

// breakerCount counts an instance's breakers (one per client holding it,
// one more while a record changed in place drains) by state; closed ones
// are not counted.
type breakerCount struct {
	open, halfOpen int
	// released: a breaker left open or half-open, and breaker_state may
	// still show it; its client's InstanceReleased sets the gauge again.
	released bool
}

// move counts one breaker in state s more (by +1) or fewer (-1), none
// below 0.
func (b *breakerCount) move(s outlier.State, by int) {
	switch s {
	case outlier.Open:
		b.open = max(b.open+by, 0)
	case outlier.HalfOpen:
		b.halfOpen = max(b.halfOpen+by, 0)
	}
}

// worst is the state breaker_state shows: open if any holder has the
// instance ejected, else half-open if any probes it, else closed. An
// instance that one client has ejected is out of rotation for that
// client's callers, so it reads out whatever the others think: an alert
// or dashboard on breaker_state == 1 sees every ejection. Half-open (2)
// is a probe on its way to a verdict, milder than open, so the order is
// not the numeric one.
func (b *breakerCount) worst() outlier.State {
	switch {
	case b.open > 0:
		return outlier.Open
	case b.halfOpen > 0:
		return outlier.HalfOpen
	}
	return outlier.Closed
}

var (
	_ client.Observer         = (*Client)(nil)
	_ client.MethodObserver   = (*Client)(nil)
	_ client.StaleObserver    = (*Client)(nil)
	_ client.ServiceObserver  = (*Client)(nil)
	_ client.InstanceObserver = (*Client)(nil)
)

// NewClient registers the client series on r.
func NewClient(r prometheus.Registerer) *Client {
	c := &Client{
		codes:    map[serviceMethod]map[string]bool{},
		breakers: map[serviceInstance]*breakerCount{},
		limits:   newClientLimits(),
		picks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "picks_total",
			Help: "Attempts sent, by called service and the instance the balancer picked.",
		}, []string{"service", "instance"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "retries_total",
			Help: "Attempts after a failure of the call's earlier attempts, by called service; hedges are hedges_total.",
		}, []string{"service"}),
		hedges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "hedges_total",
			Help: "Attempts sent beside a slow attempt still running (retry.WithHedging), by called service: not failures.",
		}, []string{"service"}),
		exhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "retry_budget_exhausted_total",
			Help: "Calls that wanted another attempt and were refused one by the retry budget.",
		}, []string{"service"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "ejections_total",
			Help: "Times outlier detection took an instance out of rotation.",
		}, []string{"service", "instance"}),
		svcEjects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "service_ejections_total",
			Help: "Times outlier detection took an instance of the called service out of rotation; unlike ejections_total, kept after the instance leaves.",
		}, []string{"service"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "client", Name: "discovery_stale",
			Help: "1 while a client with a snapshot directory serves the called service's instances from its snapshot file because the registry has not answered; 0 once it has.",
		}, []string{"service"}),
		breakerSet: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Subsystem: "client", Name: "breaker_state",
			Help: "Outlier breaker of each instance the client has sent to: 0 closed (in rotation), 1 open (ejected), 2 half-open (probing).",
		}, []string{"service", "instance"}),
		methodDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "client", Name: "method_duration_seconds",
			Help:    "Calls of each method of a called service, from the caller's side: every attempt and wait included.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"service", "method"}),
		methodErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "client", Name: "method_errors_total",
			Help: "Failed calls of each method, by the error's code (svcerr code, HTTP status, or unavailable / deadline_exceeded / canceled); \"other\" for codes past the first 16 per method, or not shaped like one.",
		}, []string{"service", "method", "code"}),
	}
	r.MustRegister(c.picks, c.retries, c.hedges, c.exhausted, c.ejections, c.svcEjects, c.stale, c.breakerSet, c.methodDur, c.methodErrs, c.limits)
	return c
}

// Picked implements client.Observer. It also makes the instance's
// breaker series (0, closed) unless it has one, so a dashboard sees every
// instance the client sends to, not only those whose breaker ever moved;
// the client reports picks, not the instances it learns, so an instance
// gets its series with its first attempt. A client never reports a pick
// after its release of an instance, and the series go only with the last
// holder's release, so this cannot bring a deleted series back.
func (c *Client) Picked(service, instance string) {
	c.picks.WithLabelValues(service, instance).Inc()
	c.breakerSet.WithLabelValues(service, instance) // made at 0 if absent; a state already set is kept
}

// Retried implements client.Observer.
func (c *Client) Retried(service string) { c.retries.WithLabelValues(service).Inc() }

// Hedged implements client.HedgeObserver.
func (c *Client) Hedged(service string) { c.hedges.WithLabelValues(service).Inc() }

// RetryBudgetExhausted implements client.Observer.
func (c *Client) RetryBudgetExhausted(service string) { c.exhausted.WithLabelValues(service).Inc() }

// BreakerChanged implements client.Observer: ejections count every
// client's; breaker_state is the worst state among the breakers of the
// clients holding the instance (breakerCount.worst).
func (c *Client) BreakerChanged(service, instance string, from, to outlier.State) {
	if to == outlier.Open {
		c.ejections.WithLabelValues(service, instance).Inc()
		c.svcEjects.WithLabelValues(service).Inc()
	}
	k := serviceInstance{service, instance}
	c.bmu.Lock()
	defer c.bmu.Unlock()
	b := c.breakers[k]
	if b == nil {
		b = &breakerCount{}
		c.breakers[k] = b
	}
	b.move(from, -1)
	b.move(to, +1)
	b.released = false // the gauge is set from the counts now
	c.breakerSet.WithLabelValues(service, instance).Set(float64(b.worst()))
	if b.open == 0 && b.halfOpen == 0 {
		delete(c.breakers, k)
	}
}

// InstanceAcquired implements client.InstanceObserver: one more client
// holds the instance.
func (c *Client) InstanceAcquired(service, instance string) {
	c.holders.report(serviceInstance{service, instance}, true, func(bool) {})
}

// BreakerReleased implements client.InstanceObserver: a breaker left in
// state last no longer counts. The gauge keeps showing it until its
// client's InstanceReleased, or the instance's next breaker change: a
// client's breaker goes as the instance leaves its set, before its last
// calls have returned, and for an instance no other client holds the
// series go at that release anyway.
func (c *Client) BreakerReleased(service, instance string, last outlier.State) {
	if last == outlier.Closed {
		return
	}
	k := serviceInstance{service, instance}
	c.bmu.Lock()
	defer c.bmu.Unlock()
	if b := c.breakers[k]; b != nil {
		b.move(last, -1)
		b.released = true
	}
}

// ClientStarted implements client.ServiceObserver: the service's counters
// exist from the start, at 0.
func (c *Client) ClientStarted(service string) {
	c.retries.WithLabelValues(service)
	c.hedges.WithLabelValues(service)
	c.exhausted.WithLabelValues(service)
	c.svcEjects.WithLabelValues(service)
}

// DiscoveryStale implements client.StaleObserver: stale counts one more
// client serving its snapshot, !stale one fewer (none below 0); the
// series is 1 while the count is above 0. Each snapshot instancer tells
// false once after each true (snapshot.WithStaleObserver).
func (c *Client) DiscoveryStale(service string, stale bool) {
	c.staleN.report(service, stale, func(any bool) { c.stale.WithLabelValues(service).Set(oneIf(any)) })
}

// MethodDone implements client.MethodObserver.
func (c *Client) MethodDone(service, method, code string, d time.Duration) {
	c.methodDur.WithLabelValues(service, method).Observe(d.Seconds())
	if code != "ok" {
		c.methodErrs.WithLabelValues(service, method, c.codeLabel(service, method, code)).Inc()
	}
}

// codeLabel is the label value code is counted under: itself if it is
// well known, or shaped like a code and among the first
// MaxCodesPerMethod of the method; OtherCode if not.
func (c *Client) codeLabel(service, method, code string) string {
	if wellKnown(code) {
		return code
	}
	if !codeShaped(code) {
		return OtherCode
	}
	k := serviceMethod{service, method}
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.codes[k]
	switch {
	case kept[code]:
		return code
	case len(kept) >= MaxCodesPerMethod:
		return OtherCode
	}
	if kept == nil {
		kept = map[string]bool{}
		c.codes[k] = kept
	}
	kept[code] = true
	return code
}

// InstanceReleased implements client.Observer: the instance's series go
// with the last client holding it (InstanceAcquired), so a mesh that
// replaces instances all day keeps a bounded set, and a client that
// still sends to an instance another has let go keeps its counts. While
// others hold it, breaker_state drops a breaker the releasing client
// left open. A client that reports no acquisitions (an Observer wrapping
// this one without client.InstanceObserver) holds nothing here: its
// release deletes the series, as before holders were counted.
func (c *Client) InstanceReleased(service, instance string) {
	k := serviceInstance{service, instance}
	c.holders.report(k, false, func(held bool) {
		c.bmu.Lock()
		defer c.bmu.Unlock()
		b := c.breakers[k]
		if held {
			if b != nil && b.released {
				// A breaker that left open or half-open showed until now.
				c.breakerSet.WithLabelValues(service, instance).Set(float64(b.worst()))
				b.released = false
				if b.open == 0 && b.halfOpen == 0 {
					delete(c.breakers, k)
				}
			}
			return
		}
		delete(c.breakers, k)
		c.picks.DeleteLabelValues(service, instance)
		c.ejections.DeleteLabelValues(service, instance)
		c.breakerSet.DeleteLabelValues(service, instance)
	})
}
