package metrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/metrics"
)

// observability.md, warren_client_method_errors_total: a code is kept as
// a label value when it is a lower-case identifier of at most 48 bytes or
// an HTTP status (a non-Warren answer's "502"), and "canceled" is always
// kept, even after a peer's flood has filled the method's cap. The
// bounded-set test reaches "other" for a long code only through the cap,
// so none of these rules was checked on its own.
func TestClient_CodeLabelShapeAndAlwaysKeptCodes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := metrics.NewClient(reg)
	errs := func(method, code string) float64 {
		return testutil.ToFloat64(mustCounter(t, reg, "warren_client_method_errors_total", map[string]string{"service": "user", "method": method, "code": code}))
	}

	// Shape, on a fresh method: far below the cap.
	at48, at49 := "c"+strings.Repeat("x", 47), "c"+strings.Repeat("x", 48)
	for _, code := range []string{at48, at49, "502", "404"} {
		c.MethodDone("user", "Get", code, time.Millisecond)
	}
	if v := errs("Get", at48); v != 1 {
		t.Errorf("a 48-byte code: errors{code=%q} = %v, want 1 (kept as itself)", at48, v)
	}
	if v := errs("Get", metrics.OtherCode); v != 1 {
		t.Errorf("errors{code=other} = %v, want 1 (the 49-byte code alone)", v)
	}
	for _, status := range []string{"502", "404"} {
		if v := errs("Get", status); v != 1 {
			t.Errorf("HTTP status %s: errors{code=%q} = %v, want 1", status, status, v)
		}
	}

	// Always kept: after a flood of made-up codes has filled the cap.
	for i := range metrics.MaxCodesPerMethod + 5 {
		c.MethodDone("user", "List", fmt.Sprintf("made_up_%d", i), time.Millisecond)
	}
	c.MethodDone("user", "List", "canceled", time.Millisecond)
	if v := errs("List", "canceled"); v != 1 {
		t.Errorf("after the flood: errors{code=canceled} = %v, want 1 (always kept)", v)
	}
}

// mustCounter finds the sample of name with exactly labels in reg's
// gather, as a collector testutil.ToFloat64 reads; an absent series reads
// 0.
func mustCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "found"}, func() float64 { return m.GetCounter().GetValue() })
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "absent"}, func() float64 { return 0 })
}
