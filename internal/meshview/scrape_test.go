package meshview

import (
	"strings"
	"testing"
)

// A scrape as a Warren service exposes it: two routes, one 5xx, client
// series of a caller.
const exposition = `# TYPE warren_http_server_requests_total counter
warren_http_server_requests_total{code="200",method="GET",route="/a"} 90
warren_http_server_requests_total{code="503",method="GET",route="/a"} 10
# TYPE warren_http_server_request_duration_seconds histogram
warren_http_server_request_duration_seconds_bucket{method="GET",route="/a",le="0.001"} 50
warren_http_server_request_duration_seconds_bucket{method="GET",route="/a",le="0.01"} 90
warren_http_server_request_duration_seconds_bucket{method="GET",route="/a",le="0.1"} 100
warren_http_server_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 100
warren_http_server_request_duration_seconds_sum{method="GET",route="/a"} 1
warren_http_server_request_duration_seconds_count{method="GET",route="/a"} 100
# TYPE warren_client_picks_total counter
warren_client_picks_total{instance="user-1",service="user"} 40
warren_client_picks_total{instance="user-2",service="user"} 60
# TYPE warren_client_retries_total counter
warren_client_retries_total{service="user"} 10
# TYPE warren_client_hedges_total counter
warren_client_hedges_total{service="user"} 5
# TYPE warren_client_retry_budget_exhausted_total counter
warren_client_retry_budget_exhausted_total{service="user"} 2
# TYPE warren_client_breaker_state gauge
warren_client_breaker_state{instance="user-2",service="user"} 1
`

func TestParseMetricsAndTraffic(t *testing.T) {
	cur, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	if cur.requests != 100 || cur.errors != 10 || cur.breakers["user"]["user-2"] != 1 {
		t.Fatalf("sample %+v", cur)
	}
	tr, ok := traffic(sample{}, cur, 10)
	if !ok {
		t.Fatal("no traffic from a zero sample")
	}
	// 100 requests in 10 s, 10 % 5xx; the median falls at the 0.001 bound
	// (50 of 100 below it), the 99th inside (0.01, 0.1]: 0.01 + 0.09·9/10.
	if tr.RequestsPerSec != 10 || tr.ErrorRatio != 0.1 || *tr.P50ms != 1 || *tr.P99ms != 91 {
		t.Errorf("traffic %+v p50 %v p99 %v", tr, *tr.P50ms, *tr.P99ms)
	}
	if len(tr.Calls) != 1 || tr.Calls[0].AttemptsPerSec != 10 || tr.Calls[0].RetryRatio != 0.1 || tr.Calls[0].HedgeRatio != 0.05 || tr.Calls[0].BudgetRefusedPerSec != 0.2 {
		t.Errorf("calls %+v", tr.Calls)
	}
	if _, ok := traffic(cur, sample{}, 10); ok {
		t.Error("counters that went back (a restart) gave traffic")
	}
	if _, err := parseMetrics(strings.NewReader("not { a metric")); err == nil {
		t.Error("a body that does not parse gave no error")
	}
}

// gRPC calls are traffic too (report j47c: a service called over gRPC
// showed idle): counted with the HTTP requests, their server-side codes
// as errors, their latency in the same histogram.
func TestParseMetrics_GRPCCallsAreTraffic(t *testing.T) {
	cur, err := parseMetrics(strings.NewReader(exposition + `# TYPE warren_grpc_server_requests_total counter
warren_grpc_server_requests_total{code="OK",method="/user.v1.UserService/Get"} 80
warren_grpc_server_requests_total{code="NotFound",method="/user.v1.UserService/Get"} 10
warren_grpc_server_requests_total{code="Unavailable",method="/user.v1.UserService/Get"} 10
# TYPE warren_grpc_server_request_duration_seconds histogram
warren_grpc_server_request_duration_seconds_bucket{method="/user.v1.UserService/Get",le="0.001"} 100
warren_grpc_server_request_duration_seconds_bucket{method="/user.v1.UserService/Get",le="0.01"} 100
warren_grpc_server_request_duration_seconds_bucket{method="/user.v1.UserService/Get",le="0.1"} 100
warren_grpc_server_request_duration_seconds_bucket{method="/user.v1.UserService/Get",le="+Inf"} 100
warren_grpc_server_request_duration_seconds_sum{method="/user.v1.UserService/Get"} 0.05
warren_grpc_server_request_duration_seconds_count{method="/user.v1.UserService/Get"} 100
`))
	if err != nil {
		t.Fatal(err)
	}
	if cur.requests != 200 || cur.errors != 20 {
		t.Fatalf("requests %v errors %v, want 200 and 20 (HTTP's 100 and 10, gRPC's 100 and 10: NotFound is an answer)", cur.requests, cur.errors)
	}
	tr, _ := traffic(sample{}, cur, 10)
	// 150 of 200 under 1 ms: the median is 100/150 of the way into the
	// first bucket (HTTP's alone put it at its bound, 1 ms).
	if *tr.P50ms != 0.67 {
		t.Errorf("p50 %v ms, want 0.67 (the gRPC calls in the histogram)", *tr.P50ms)
	}
}
