package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/outlier"
)

// series lists "name{label=value,…}" of every series r holds.
func series(t *testing.T, r *prometheus.Registry) []string {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			out = append(out, mf.GetName()+"{"+strings.Join(ls, ",")+"}")
		}
	}
	return out
}

// Methods nobody routes are one label value, not one per word a client
// makes up.
func TestServer_UnknownMethodsShareOneLabelValue(t *testing.T) {
	r := prometheus.NewRegistry()
	router := httptransport.NewRouter()
	router.Handle("/any", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h := NewServer(r).Middleware(router)
	for _, m := range []string{"BREW", "X-" + strings.Repeat("A", 40), "GET"} {
		for _, path := range []string{"/any", "/nowhere"} {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, path, nil))
		}
	}
	for _, s := range series(t, r) {
		if strings.Contains(s, "BREW") || strings.Contains(s, "X-AAA") {
			t.Errorf("series %s carries a made-up method", s)
		}
	}
	joined := strings.Join(series(t, r), " ")
	for _, want := range []string{"method=other,route=/any", "method=GET,route=/any"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no series with %s in %s", want, joined)
		}
	}
}

// Every instance the client sends to has a breaker series from its first
// pick, 0 (closed), not only those whose breaker moved (the tester's nit:
// no series for closed breakers); a later pick keeps the state it has.
func TestClient_BreakerSeriesFromTheFirstPick(t *testing.T) {
	r := prometheus.NewRegistry()
	c := NewClient(r)
	c.Picked("echo", "a")
	c.Picked("echo", "b")
	if n := testutil.CollectAndCount(c.breakerSet); n != 2 {
		t.Fatalf("breaker series = %d, want 2 (one per picked instance): %v", n, series(t, r))
	}
	if v := testutil.ToFloat64(c.breakerSet.WithLabelValues("echo", "a")); v != 0 {
		t.Errorf("a's breaker = %v, want 0 (closed)", v)
	}
	c.BreakerChanged("echo", "b", outlier.Closed, outlier.Open)
	c.BreakerChanged("echo", "b", outlier.Open, outlier.HalfOpen)
	c.Picked("echo", "b") // the half-open probe
	if v := testutil.ToFloat64(c.breakerSet.WithLabelValues("echo", "b")); v != float64(outlier.HalfOpen) {
		t.Errorf("b's breaker after a pick = %v, want %v (half-open kept)", v, float64(outlier.HalfOpen))
	}
}

// An instance's picks, ejections and breaker series go when it leaves.
func TestClient_InstanceReleasedDeletesItsSeries(t *testing.T) {
	r := prometheus.NewRegistry()
	c := NewClient(r)
	c.Picked("echo", "a")
	c.Picked("echo", "b")
	c.BreakerChanged("echo", "a", outlier.Closed, outlier.Open)
	c.InstanceReleased("echo", "a")
	for _, s := range series(t, r) {
		if strings.Contains(s, "instance=a") {
			t.Errorf("series %s outlived its instance", s)
		}
	}
	if !strings.Contains(strings.Join(series(t, r), " "), "instance=b") {
		t.Error("the other instance's series went too")
	}
	// The service's count of ejections stays: a scrape after the ejected
	// instance left still sees it happened.
	if v := testutil.ToFloat64(c.svcEjects.WithLabelValues("echo")); v != 1 {
		t.Errorf("service_ejections_total{service=echo} = %v after the instance left, want 1", v)
	}
}

// A client's per-service counters exist from its start, at 0 (report
// j47c: no data until the first retry, and rate() missed it).
func TestClient_CountersAtZeroFromTheStart(t *testing.T) {
	r := prometheus.NewRegistry()
	c := NewClient(r)
	c.ClientStarted("user")
	got := strings.Join(series(t, r), " ")
	for _, want := range []string{"warren_client_retries_total{service=user}", "warren_client_retry_budget_exhausted_total{service=user}",
		"warren_client_service_ejections_total{service=user}", "warren_client_hedges_total{service=user}"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s at start: %s", want, got)
		}
	}
}

// A service's watch restart counter exists at 0 once its first set is
// reported, before any restart (report j47c F14).
func TestDiscovery_RestartCounterAtZeroFromTheFirstSet(t *testing.T) {
	r := prometheus.NewRegistry()
	d := NewDiscovery(r)
	d.Instances("user", 2)
	if got := strings.Join(series(t, r), " "); !strings.Contains(got, "warren_registry_watch_restarts_total{service=user}") {
		t.Errorf("no watch_restarts_total{service=user} after the first set: %s", got)
	}
}

// Hedges have their own series, apart from retries (report j57b F9).
func TestClient_HedgesAreNotRetries(t *testing.T) {
	c := NewClient(prometheus.NewRegistry())
	c.Hedged("user")
	if h, r := testutil.ToFloat64(c.hedges.WithLabelValues("user")), testutil.ToFloat64(c.retries.WithLabelValues("user")); h != 1 || r != 0 {
		t.Fatalf("after a hedge: hedges_total %v, retries_total %v; want 1, 0", h, r)
	}
}

// breaker_state of an instance two clients hold is the worst of their
// breakers, open over half-open over closed (not the numeric order: 2,
// half-open, is a probe on its way to a verdict); a breaker that leaves
// with its client stops counting at that client's release (audit o6 R1).
func TestClient_BreakerStateIsTheWorstOfTheHolders(t *testing.T) {
	r := prometheus.NewRegistry()
	c := NewClient(r)
	state := func(step string, want outlier.State) {
		t.Helper()
		if v := testutil.ToFloat64(c.breakerSet.WithLabelValues("echo", "a")); v != float64(want) {
			t.Errorf("%s: breaker_state = %v, want %v", step, v, float64(want))
		}
	}
	c.InstanceAcquired("echo", "a") // client 1
	c.InstanceAcquired("echo", "a") // client 2
	c.Picked("echo", "a")
	c.BreakerChanged("echo", "a", outlier.Closed, outlier.Open) // 1 ejects
	c.BreakerChanged("echo", "a", outlier.Closed, outlier.Open) // 2 ejects
	c.BreakerChanged("echo", "a", outlier.Open, outlier.HalfOpen)
	state("one open, one half-open", outlier.Open)
	c.BreakerReleased("echo", "a", outlier.Open) // 1 lets it go
	state("1's breaker gone, 1 not yet released", outlier.Open)
	c.InstanceReleased("echo", "a")
	state("1 released, 2 half-open", outlier.HalfOpen)
	c.BreakerChanged("echo", "a", outlier.HalfOpen, outlier.Closed)
	state("2 readmitted it", outlier.Closed)
	c.BreakerReleased("echo", "a", outlier.Closed)
	c.InstanceReleased("echo", "a")
	for _, s := range series(t, r) {
		if strings.Contains(s, "instance=a") {
			t.Errorf("series %s outlived the last client's release", s)
		}
	}
}
