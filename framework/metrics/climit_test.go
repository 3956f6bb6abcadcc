package metrics_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/climit"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// Report j50a 6: the client concurrency limit's value and calls in flight
// were not observable; an operator saw only client_limited errors.
func TestClient_ConcurrencyLimitAndInFlightPerService(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	reg := memory.New()
	t.Cleanup(func() { reg.Close() })
	if err := reg.Register(context.Background(), registry.Instance{ID: registry.DefaultID("user", "127.0.0.1", port), Name: "user",
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}); err != nil {
		t.Fatal(err)
	}

	prom := prometheus.NewRegistry()
	c, err := client.New(context.Background(), reg, "user", client.WithObserver(metrics.NewClient(prom)),
		client.WithConcurrencyLimit(climit.WithLimits(7, 1, 10)))
	if err != nil {
		t.Fatal(err)
	}
	const want = `
# HELP warren_client_concurrency_limit Current adaptive limit on calls in flight to the called service (framework/climit); calls past it fail at once with code client_limited.
# TYPE warren_client_concurrency_limit gauge
warren_client_concurrency_limit{service="user"} 7
# HELP warren_client_in_flight Calls in flight to the called service that its concurrency limit admitted.
# TYPE warren_client_in_flight gauge
warren_client_in_flight{service="user"} %d
`
	check := func(inFlight string) {
		t.Helper()
		if err := testutil.GatherAndCompare(prom, strings.NewReader(strings.ReplaceAll(want, "%d", inFlight)),
			"warren_client_concurrency_limit", "warren_client_in_flight"); err != nil {
			t.Fatal(err)
		}
	}
	check("0")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- c.Invoke(ctx, "GET", "/x", nil, nil)
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not reach the service in 10s")
	}
	check("1")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	check("0")
	c.Close()
	if n, err := testutil.GatherAndCount(prom, "warren_client_concurrency_limit", "warren_client_in_flight"); err != nil || n != 0 {
		t.Fatalf("%d series (err %v) after the client closed, want none", n, err)
	}
}
