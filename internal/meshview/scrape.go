package meshview

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"

	"github.com/warren-mesh/warren/framework/grpctransport"
)

// The series a probe reads (docs/observability.md lists them all).
const (
	seriesRequests     = "warren_http_server_requests_total"
	seriesDuration     = "warren_http_server_request_duration_seconds"
	seriesGRPCRequests = "warren_grpc_server_requests_total"
	seriesGRPCDuration = "warren_grpc_server_request_duration_seconds"
	seriesPicks        = "warren_client_picks_total"
	seriesRetries      = "warren_client_retries_total"
	seriesHedges       = "warren_client_hedges_total"
	seriesRefused      = "warren_client_retry_budget_exhausted_total"
	seriesBreaker      = "warren_client_breaker_state"
	seriesShed         = "warren_shed_requests_total"
)

// sample is one scrape of an instance's /metrics, reduced to what the page
// shows. Counters are totals since the process started.
type sample struct {
	requests, errors float64
	// clientErrors are the 4xx answers (and gRPC's codes for the
	// request's own fault): one instance with many more of them than its
	// siblings is the signature of a bad deploy (report j57b F1).
	clientErrors float64
	// shedAdmitted and shed are the load shedder's decisions (hasShed:
	// the instance has one): a starved instance looks perfect in its
	// handler times, but refuses (report j57b F4).
	shedAdmitted, shed float64
	hasShed            bool
	// buckets are the cumulative latency histogram over every route,
	// sorted by upper bound (the last is +Inf).
	buckets []bucket
	// clients are this process's calls to other services, by service.
	clients map[string]clientCounters
	// breakers are its outlier breakers: called service → instance → state
	// (0 closed, 1 open, 2 half-open).
	breakers map[string]map[string]int
}

type bucket struct{ upper, count float64 }

type clientCounters struct{ picks, retries, hedges, refused float64 }

// parseMetrics reads a Prometheus text exposition into a sample. Series
// it does not know are ignored; a body that does not parse is an error.
func parseMetrics(r io.Reader) (sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return sample{}, fmt.Errorf("metrics: %w", err)
	}
	s := sample{clients: map[string]clientCounters{}, breakers: map[string]map[string]int{}}
	// A service's traffic is its HTTP and gRPC calls together; errors are
	// the server's (5xx, and the gRPC codes gateways answer 5xx for).
	for _, m := range fams[seriesRequests].GetMetric() {
		v := m.GetCounter().GetValue()
		s.requests += v
		code, err := strconv.Atoi(label(m, "code"))
		switch {
		case err != nil:
		case code >= 500:
			s.errors += v
		case code >= 400:
			s.clientErrors += v
		}
	}
	for _, m := range fams[seriesGRPCRequests].GetMetric() {
		v := m.GetCounter().GetValue()
		s.requests += v
		switch code := label(m, "code"); {
		case grpcServerFailure(code):
			s.errors += v
		case code != codes.OK.String():
			s.clientErrors += v
		}
	}
	for _, m := range fams[seriesShed].GetMetric() {
		s.hasShed = true
		if v := m.GetCounter().GetValue(); label(m, "outcome") == "admitted" {
			s.shedAdmitted += v
		} else {
			s.shed += v
		}
	}
	if ms := append(fams[seriesDuration].GetMetric(), fams[seriesGRPCDuration].GetMetric()...); len(ms) > 0 {
		byUpper := map[float64]float64{}
		for _, m := range ms {
			h := m.GetHistogram()
			hasInf := false
			for _, b := range h.GetBucket() {
				byUpper[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !hasInf { // the text format lists +Inf; other encoders may not
				byUpper[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		for u, c := range byUpper {
			s.buckets = append(s.buckets, bucket{u, c})
		}
		sort.Slice(s.buckets, func(i, j int) bool { return s.buckets[i].upper < s.buckets[j].upper })
	}
	add := func(name string, f func(*clientCounters, float64)) {
		for _, m := range fams[name].GetMetric() {
			svc := label(m, "service")
			c := s.clients[svc]
			f(&c, m.GetCounter().GetValue())
			s.clients[svc] = c
		}
	}
	add(seriesPicks, func(c *clientCounters, v float64) { c.picks += v })
	add(seriesRetries, func(c *clientCounters, v float64) { c.retries += v })
	add(seriesHedges, func(c *clientCounters, v float64) { c.hedges += v })
	add(seriesRefused, func(c *clientCounters, v float64) { c.refused += v })
	for _, m := range fams[seriesBreaker].GetMetric() {
		svc, inst := label(m, "service"), label(m, "instance")
		if s.breakers[svc] == nil {
			s.breakers[svc] = map[string]int{}
		}
		s.breakers[svc][inst] = int(m.GetGauge().GetValue())
	}
	return s, nil
}

// grpcServerFailure reports whether a code label (codes.Code's String,
// as metrics writes it) is the server's failure (grpctransport.ServerFailure).
func grpcServerFailure(name string) bool {
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == name {
			return grpctransport.ServerFailure(c)
		}
	}
	return false
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// traffic is what happened between two samples of one process, secs
// apart; ok is false when there is nothing to compare (a single sample, or
// counters that went back: the process restarted).
func traffic(old, cur sample, secs float64) (t Traffic, ok bool) {
	if secs <= 0 || cur.requests < old.requests {
		return Traffic{}, false
	}
	n := cur.requests - old.requests
	t.RequestsPerSec = round(n/secs, 2)
	t.requests = n
	if n > 0 {
		t.ErrorRatio = round((cur.errors-old.errors)/n, 4)
		t.ClientErrorRatio = round((cur.clientErrors-old.clientErrors)/n, 4)
	}
	if cur.hasShed {
		// Over the window, not warren_shed_ratio's few hundred ms: a
		// burst of refusals between two scrapes still shows.
		var r float64
		if d := (cur.shedAdmitted + cur.shed) - (old.shedAdmitted + old.shed); d > 0 {
			r = round((cur.shed-old.shed)/d, 4)
		}
		t.ShedRatio = &r
	}
	delta := histogramDelta(old.buckets, cur.buckets)
	t.P50ms = quantileMS(0.5, delta)
	t.P99ms = quantileMS(0.99, delta)
	for svc, c := range cur.clients {
		o := old.clients[svc]
		if c.picks < o.picks {
			continue
		}
		cs := ClientCalls{
			Service:             svc,
			AttemptsPerSec:      round((c.picks-o.picks)/secs, 2),
			RetriesPerSec:       round((c.retries-o.retries)/secs, 2),
			BudgetRefusedPerSec: round((c.refused-o.refused)/secs, 2),
		}
		if a := c.picks - o.picks; a > 0 {
			cs.RetryRatio = round((c.retries-o.retries)/a, 4)
			cs.HedgeRatio = round((c.hedges-o.hedges)/a, 4)
		}
		t.Calls = append(t.Calls, cs)
	}
	sort.Slice(t.Calls, func(i, j int) bool { return t.Calls[i].Service < t.Calls[j].Service })
	return t, true
}

func histogramDelta(old, cur []bucket) []bucket {
	prev := map[float64]float64{}
	for _, b := range old {
		prev[b.upper] = b.count
	}
	out := make([]bucket, 0, len(cur))
	for _, b := range cur {
		out = append(out, bucket{b.upper, b.count - prev[b.upper]})
	}
	return out
}

// quantileMS estimates the q-quantile in milliseconds from cumulative
// buckets by linear interpolation inside the bucket, as Prometheus's
// histogram_quantile does; nil when the buckets hold no observation.
func quantileMS(q float64, buckets []bucket) *float64 {
	if len(buckets) == 0 {
		return nil
	}
	total := buckets[len(buckets)-1].count
	if total <= 0 {
		return nil
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		if b.count >= rank {
			if math.IsInf(b.upper, 1) {
				v := round(lower*1000, 2) // past the last finite bound: report that bound
				return &v
			}
			in := b.count - below
			frac := 0.0
			if in > 0 {
				frac = (rank - below) / in
			}
			v := round((lower+(b.upper-lower)*frac)*1000, 2)
			return &v
		}
		lower, below = b.upper, b.count
	}
	return nil
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// breakerText names a breaker_state value.
func breakerText(state int) string {
	switch state {
	case 0:
		return "closed"
	case 1:
		return "open"
	case 2:
		return "half-open"
	}
	return "state " + strconv.Itoa(state)
}
