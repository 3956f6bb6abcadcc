package meshview

import (
	"strings"
	"testing"
)

// The page shows the share of requests an instance's load shedder refused
// over the window (report j57b F4: a starved instance looked perfect in
// its handler times while it refused callers).
func TestTraffic_ShedRatioOverTheWindow(t *testing.T) {
	scrape := func(admitted, limit, waiting string) sample {
		t.Helper()
		s, err := parseMetrics(strings.NewReader(exposition + `# TYPE warren_shed_requests_total counter
warren_shed_requests_total{outcome="admitted"} ` + admitted + `
warren_shed_requests_total{outcome="shed_limit"} ` + limit + `
warren_shed_requests_total{outcome="shed_queue"} 0
warren_shed_requests_total{outcome="shed_waiting"} ` + waiting + `
`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	old, cur := scrape("1000", "5", "0"), scrape("1300", "80", "20")
	tr, ok := traffic(old, cur, 10)
	// Between the scrapes: 300 admitted, 75 shed_limit and 20 shed_waiting.
	if !ok || tr.ShedRatio == nil || *tr.ShedRatio != round(95.0/395.0, 4) {
		t.Fatalf("shed ratio %v, want 95 refused of 395 decisions", tr.ShedRatio)
	}
	noShedder, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if tr, _ := traffic(sample{}, noShedder, 10); tr.ShedRatio != nil {
		t.Errorf("an instance without a shedder shows shed ratio %v, want none", *tr.ShedRatio)
	}
	if tr, _ := traffic(old, old, 10); tr.ShedRatio == nil || *tr.ShedRatio != 0 {
		t.Errorf("no decisions in the window: shed ratio %v, want 0", tr.ShedRatio)
	}
}
