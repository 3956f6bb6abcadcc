package grpcclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

const refundMethod = "/warren.test.v1.Echo/Refund"

// release2 is Echo of a newer release: Say as before, plus Refund, which
// answers "refunded by <id>" and counts its calls.
type release2 struct {
	*grpctest.Echo
	refunds atomic.Int64
}

func unaryMethod(name string, f func(ctx context.Context, srv any, in string) (string, error)) grpc.MethodDesc {
	full := "/warren.test.v1.Echo/" + name
	return grpc.MethodDesc{MethodName: name, Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
		req := new(wrapperspb.StringValue)
		if err := dec(req); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, r any) (any, error) {
			out, err := f(ctx, srv, r.(*wrapperspb.StringValue).GetValue())
			if err != nil {
				return nil, err
			}
			return wrapperspb.String(out), nil
		}
		if in == nil {
			return call(ctx, req)
		}
		return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: full}, call)
	}}
}

var release2Desc = grpc.ServiceDesc{
	ServiceName: "warren.test.v1.Echo",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		unaryMethod("Say", func(ctx context.Context, srv any, in string) (string, error) { return srv.(*release2).Say(ctx, in) }),
		unaryMethod("Refund", func(_ context.Context, srv any, _ string) (string, error) {
			r := srv.(*release2)
			r.refunds.Add(1)
			return "refunded by " + r.ID, nil
		}),
	},
}

func startServing(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	go g.Serve(ln) //nolint:errcheck // ends with Stop below
	t.Cleanup(g.Stop)
	return "grpc://" + ln.Addr().String()
}

func refund(c *grpcclient.Client) func(ctx context.Context) (string, error) {
	ep := grpcclient.NewEndpoint(c, refundMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(""), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{})
	return func(ctx context.Context) (string, error) {
		out, err := ep(ctx, nil)
		if err != nil {
			return "", err
		}
		return out.(string), nil
	}
}

// A rolling deploy's mixed fleet: instance "a-old" (the previous release)
// lacks Refund, "b-new" has it, and the balancer tries a-old first. A
// Refund — not idempotent — that a-old answers "unknown method" ran
// nowhere: it is retried on b-new and succeeds, every time. a-old is not
// held guilty for it: with ejection after 2 failures, 20 such answers
// leave it in, and its Say still serves. Both for a Warren server (its
// unknown-method answer carries Warren's ErrorInfo) and for a plain
// grpc-go server (an older Warren: grpc-go's own text). A handler's own
// UNIMPLEMENTED (svcerr.Unimplemented) stays an answer: not retried.
func TestClient_UnknownMethodOnAnOldInstanceIsRetriedElsewhereAndNotHeldAgainstIt(t *testing.T) {
	for _, server := range []string{"warren", "plain grpc-go"} {
		t.Run(server, func(t *testing.T) {
			var old string
			if server == "warren" {
				old = startEcho(t, "a-old").instance("a-old")
			} else {
				old = registry.Instance{ID: "a-old", Name: "echo", Endpoints: []string{
					startServing(t, func(g *grpc.Server) { grpctest.Register(g, "a-old") })}}.String()
			}
			r2 := &release2{Echo: &grpctest.Echo{ID: "b-new"}}
			newer := registry.Instance{ID: "b-new", Name: "echo", Endpoints: []string{
				startServing(t, func(g *grpc.Server) { g.RegisterService(&release2Desc, r2) })}}.String()
			c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{old, newer}, "echo", grpcclient.WithClientOptions(
				client.WithBalancer(newFirstPick()), client.WithOutlier(outlier.WithConsecutiveFailures(2)),
				// Every call here needs its retry, more than the default
				// budget's 20%: such retries spend no token
				// (retry.Freer), so the default budget stands.
			))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			call := refund(c)
			for i := range 20 {
				got, err := call(ctx30(t))
				if err != nil || got != "refunded by b-new" {
					t.Fatalf("Refund %d = %q, %v; want b-new's answer after a-old's unknown method", i, got, err)
				}
			}
			if n := r2.refunds.Load(); n != 20 {
				t.Fatalf("b-new ran Refund %d times for 20 calls", n)
			}
			// firstPick sent each call to a-old first unless ejected.
			if st := c.State(); st.Ejected != 0 {
				t.Fatalf("state %+v: want a-old never ejected", st)
			}
			// Nor were its quick refusals latency samples (P2C would
			// favour it for them).
			for _, tg := range c.Targets() {
				if tg.Instance().ID == "a-old" && tg.Latency() != 0 {
					t.Fatalf("a-old's latency %s after answering only unknown methods", tg.Latency())
				}
			}
			for i := range 5 {
				if id, err := say(c)(ctx30(t), "id"); err != nil || id != "a-old" {
					t.Fatalf("Say %d after the Refunds = %q, %v; want a-old, still in rotation", i, id, err)
				}
			}
			if server != "warren" {
				return // a plain server answers a handler's error as UNKNOWN
			}
			// A handler that says "not implemented" answered: once, on a-old.
			before := r2.Calls.Load()
			_, err = say(c)(ctx30(t), "fail:unimplemented:not_implemented")
			var ge *grpcclient.Error
			if !errors.As(err, &ge) || status.Code(err) != codes.Unimplemented || svcerr.KindOf(err) != svcerr.Unimplemented ||
				!strings.Contains(ge.Instance, "127.0.0.1") || r2.Calls.Load() != before {
				t.Fatalf("handler's UNIMPLEMENTED: err %v, b-new's calls %d → %d; want a-old's answer, not retried", err, before, r2.Calls.Load())
			}
		})
	}
}
