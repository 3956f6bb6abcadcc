package metrics_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/shed"
)

// shedSeries gathers reg and returns each warren_shed_* sample by name and
// outcome label.
func shedSeries(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, lp := range m.GetLabel() {
				key += "{" + lp.GetName() + "=" + lp.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[key] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

func TestShed_SeriesFollowTheLimiter(t *testing.T) {
	l, err := shed.New(shed.WithQueueProbe(nil), shed.WithLimits(2, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics.NewShed(reg, l)

	a, _ := l.Acquire()
	b, _ := l.Acquire()
	l.Acquire() // refused: the limit is 2
	want := map[string]float64{
		"warren_shed_requests_total{outcome=admitted}":   2,
		"warren_shed_requests_total{outcome=shed_limit}": 1,
		"warren_shed_requests_total{outcome=shed_queue}": 0,
		"warren_shed_limit":                              2,
		"warren_shed_in_flight":                          2,
		"warren_shed_queue_length":                       0,
		"warren_shed_queue_delay_seconds":                0,
	}
	got := shedSeries(t, reg)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	a.Release()
	b.Release()
	if n := shedSeries(t, reg)["warren_shed_in_flight"]; n != 0 {
		t.Fatalf("in flight after releases = %v, want 0", n)
	}
}
