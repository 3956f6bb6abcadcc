package bootstrap

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/endpoint"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/internal/spanlog"
)

// With bootstrap's tracing (here --trace-stdout), a gRPC server built
// with Deps.GRPCServerOptions and a grpcclient built with
// Deps.ClientOptions make one trace of a call: the call's span, its
// attempt's, and the server's, whose parent came over the wire. The
// self-check's health call at start-up leaves no span.
func TestRun_GRPCCallIsOneTraceFromClientToServer(t *testing.T) {
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + freePort(t), "--grace", "0s", "--trace-stdout"}
	var deps *Deps
	build := withGRPC(&deps)
	out := start(t, args, build) // deps is set: the log line start waits for follows the build

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	say := sayClient(t, ctx, deps)
	if _, err := say(ctx, "hi"); err != nil {
		t.Fatal(err)
	}

	spanlog.WaitChain(t, out.String, "svc.Say", "call warren.test.v1.Echo/Say", "warren.test.v1.Echo/Say")
	for n := range spanlog.Parse(out.String()) {
		if strings.Contains(n, "grpc.health") {
			t.Errorf("span %q: health calls (the self-check) should have none", n)
		}
	}
}

// With --debug-listen, unary gRPC calls served through
// Deps.GRPCServerOptions are counted and timed as HTTP requests are, and
// each gets an access line (report j47c: gRPC traffic showed in no series
// and no log, and the mesh page showed a gRPC-only service idle). Health
// checks, the self-check's among them, are neither counted nor logged at
// info.
func TestRun_GRPCCallsAreCountedAndLogged(t *testing.T) {
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + freePort(t), "--grace", "0s", "--debug-listen", "127.0.0.1:0"}
	var deps *Deps
	build := withGRPC(&deps)
	out := start(t, args, build)
	m := regexp.MustCompile(`debug=(http://\S+/metrics)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("listen line names no debug address\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	say := sayClient(t, ctx, deps)
	for range 2 {
		if _, err := say(ctx, "hi"); err != nil {
			t.Fatal(err)
		}
	}

	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(b)
	for _, want := range []string{
		`warren_grpc_server_requests_total{code="OK",method="/warren.test.v1.Echo/Say"} 2`,
		`warren_grpc_server_request_duration_seconds_count{method="/warren.test.v1.Echo/Say"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, "grpc.health") {
		t.Error("health checks are counted")
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), `msg=access transport=grpc method=/warren.test.v1.Echo/Say code=OK`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no access line per gRPC call\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if strings.Contains(out.String(), "level=info") && regexp.MustCompile(`level=info[^\n]*grpc\.health`).MatchString(out.String()) {
		t.Errorf("a health check was logged at info\n%s", out)
	}
}

// withGRPC is a BuildFunc serving hello over HTTP and the test echo service
// over gRPC with Deps.GRPCServerOptions; *deps is the run's Deps.
func withGRPC(deps **Deps) BuildFunc {
	return func(ctx context.Context, d *Deps) (Transports, error) {
		*deps = d
		opts, err := grpcserver.Settings{Listen: "127.0.0.1:0"}.Options(d.Config, d.Shedder)
		if err != nil {
			return Transports{}, err
		}
		gs, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "svc-1") }, append(opts, d.GRPCServerOptions()...)...)
		if err != nil {
			return Transports{}, err
		}
		ts, err := hello(ctx, d)
		ts.Servers = []transport.Server{gs}
		return ts, err
	}
}

// sayClient is a grpcclient endpoint of the test echo service's Say, with
// the run's client options; closed when the test ends.
func sayClient(t *testing.T, ctx context.Context, deps *Deps) endpoint.Endpoint {
	t.Helper()
	c, err := grpcclient.New(ctx, deps.Discovery, "svc", grpcclient.WithClientOptions(deps.ClientOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{}, grpcclient.Named("Say"))
}
