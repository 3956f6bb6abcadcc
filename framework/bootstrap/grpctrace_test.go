package bootstrap

import (
	"context"
	"strings"
	"testing"
	"time"

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
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		deps = d
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
	out := start(t, args, build) // deps is set: the log line start waits for follows the build

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := grpcclient.New(ctx, deps.Discovery, "svc", grpcclient.WithClientOptions(deps.ClientOptions()...))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	say := grpcclient.NewEndpoint(c, grpctest.SayMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{}, grpcclient.Named("Say"))
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
