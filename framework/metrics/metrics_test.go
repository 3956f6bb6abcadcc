package metrics_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/servicetest"
)

// TestMetrics_SeriesAfterTraffic runs a "front" service that calls two
// instances of "echo", one of which answers 503, on a real etcd, scrapes the
// front's debug listener and checks every series with its labels: server
// requests, latency and in-flight; client picks, retries, budget refusals,
// ejections and breaker state; registration state, instance counts and, after
// an etcd restart, watch restarts.
func TestMetrics_SeriesAfterTraffic(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()

	prom := metrics.NewRegistry()
	clientMetrics := metrics.NewClient(prom)
	discovery := metrics.NewDiscovery(prom)
	newReg := func() *etcd.Registry {
		r, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(2*time.Second),
			etcd.WithObserver(discovery), etcd.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	base := []app.Option{app.WithListen("127.0.0.1:0"), app.WithGracePeriod(0), app.WithSignals(false), app.WithLogger(log.NewNopLogger())}

	echo := func(status int) http.Handler {
		r := httptransport.NewRouter()
		r.Handle("GET /echo/{x}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			io.WriteString(w, `{}`)
		}))
		return r
	}
	servicetest.Run(t, newApp(t, "echo", echo(http.StatusOK), newReg(), append(base, app.WithID("echo-good"))...))
	servicetest.Run(t, newApp(t, "echo", echo(http.StatusServiceUnavailable), newReg(), append(base, app.WithID("echo-bad"))...))

	frontReg := newReg()
	metrics.RegisterStatus(prom, "front", frontReg)
	echoes, err := client.New(ctx, frontReg, "echo",
		client.WithObserver(clientMetrics),
		client.WithBalancer(balancer.NewRoundRobin()),
		client.WithOutlier(outlier.WithConsecutiveFailures(2)),
		client.WithRetry(retry.WithBudget(retry.NewBudget(0, 1)), retry.WithBackoff(time.Millisecond, time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	defer echoes.Close()
	front := httptransport.NewRouter()
	front.Handle("GET /call/{x}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := echoes.Invoke(r.Context(), "GET", "/echo/"+r.PathValue("x"), nil, nil); err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	}))
	fa := newApp(t, "front", front, frontReg, append(base, app.WithID("front-1"),
		app.WithDebugListener("127.0.0.1:0", metrics.Handler(prom)),
		app.WithHTTPMiddleware(metrics.NewServer(prom).Middleware))...)
	servicetest.Run(t, fa)
	waitFor(t, "both echo instances in the client", func() bool { return len(echoes.Targets()) == 2 })

	frontURL := fa.Instance().Endpoints[0]
	for i := range 20 {
		get(t, frontURL+"/call/"+strconv.Itoa(i))
	}
	get(t, frontURL+"/nowhere")

	scrapeURL := "http://" + fa.DebugAddr() + "/metrics"
	body := get(t, scrapeURL)
	want := []struct {
		name    string
		labels  string
		atLeast float64
	}{
		{"warren_http_server_requests_total", `code="200",method="GET",route="/call/{x}"`, 1},
		{"warren_http_server_requests_total", `code="404",method="other",route="unmatched"`, 1},
		{"warren_http_server_request_duration_seconds_count", `method="GET",route="/call/{x}"`, 20},
		{"warren_http_server_in_flight_requests", ``, 0},
		{"warren_client_picks_total", `instance="echo-good",service="echo"`, 10},
		{"warren_client_picks_total", `instance="echo-bad",service="echo"`, 2},
		{"warren_client_retries_total", `service="echo"`, 1},
		{"warren_client_retry_budget_exhausted_total", `service="echo"`, 1},
		{"warren_client_ejections_total", `instance="echo-bad",service="echo"`, 1},
		{"warren_client_breaker_state", `instance="echo-bad",service="echo"`, 1},
		{"warren_client_breaker_state", `instance="echo-good",service="echo"`, 0}, // present, closed
		{"warren_registry_registered", `service="front"`, 1},
		{"warren_registry_reregistrations_total", `service="front"`, 0},
		{"warren_registry_instances", `service="echo"`, 2},
	}
	for _, w := range want {
		v, ok := value(body, w.name, w.labels)
		if !ok || v < w.atLeast {
			t.Errorf("%s{%s} = %v (present %v), want ≥ %v", w.name, w.labels, v, ok, w.atLeast)
		}
	}
	if t.Failed() {
		t.Fatalf("scrape:\n%s", grepWarren(body))
	}
	if !strings.Contains(get(t, "http://"+fa.DebugAddr()+"/debug/pprof/"), "goroutine") {
		t.Error("/debug/pprof/ does not list profiles")
	}

	// An etcd restart breaks every watch off; each instancer starts over.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a watch restart", func() bool {
		v, ok := value(get(t, scrapeURL), "warren_registry_watch_restarts_total", `service="echo"`)
		return ok && v >= 1
	})
}

func newApp(t *testing.T, name string, h http.Handler, reg *etcd.Registry, opts ...app.Option) *app.App {
	t.Helper()
	a, err := app.New(name, h, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// value finds the sample name{labels} in a text exposition; labels are as
// Prometheus prints them (sorted, quoted), "" for none.
func value(body, name, labels string) (float64, bool) {
	prefix := name + " "
	if labels != "" {
		prefix = name + "{" + labels + "} "
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, prefix) {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, prefix)), 64)
			return v, err == nil
		}
	}
	return 0, false
}

func grepWarren(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "warren_") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
