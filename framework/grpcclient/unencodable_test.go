package grpcclient_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/go-kit/kit/sd"
	kitgrpc "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// A request the client cannot marshal (a proto3 string that is not valid
// UTF-8) is the caller's error: grpcclient.ErrUnencodable wrapping
// protobuf's error, after one attempt, held against no instance. grpc-go
// reports it as INTERNAL, which counted against the instance: three such
// calls ejected a healthy instance.
func TestClient_UnencodableRequestIsTheCallersError(t *testing.T) {
	a, b, c := ejectingPair(t)
	call := say(c, grpcclient.Idempotent())
	// The same through go-kit's client (a method given ClientOptions).
	viaKit := say(c, grpcclient.Idempotent(), grpcclient.ClientOptions(kitgrpc.ClientBefore(
		func(ctx context.Context, _ *metadata.MD) context.Context { return ctx })))
	before := c.State()
	for i := range 10 { // firstPick sends each to a
		f := call
		if i%2 == 1 {
			f = viaKit
		}
		_, err := f(ctx30(t), "bad \xff text")
		var ge *grpcclient.Error
		if !errors.Is(err, grpcclient.ErrUnencodable) || !errors.Is(err, proto.Error) || errors.As(err, &ge) ||
			errors.Is(err, client.ErrUnreachable) || svcerr.KindOf(err) != svcerr.Internal {
			t.Fatalf("call %d = %v; want ErrUnencodable wrapping protobuf's error, kind internal, no instance's error", i, err)
		}
	}
	if st := c.State(); st.Ejected != 0 || st.Retries-st.Hedges != before.Retries-before.Hedges {
		t.Fatalf("state after 10 unencodable requests %+v (before %+v): want no retry, no ejection", st, before)
	}
	if id, err := call(ctx30(t), "id"); err != nil || id != "a" {
		t.Fatalf("a valid call after them = %q, %v; want a's answer", id, err)
	}
	if n := a.echo.Calls.Load() + b.echo.Calls.Load(); n != 1 {
		t.Fatalf("handlers ran %d times; want once, for the valid call", n)
	}
}

// A server that cannot marshal its own response sends INTERNAL with
// grpc-go's same "error while marshaling" text: that one is the
// instance's answer, after its handler ran, and stays its *Error.
func TestClient_ServersOwnMarshalFailureIsTheInstances(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	svc, method, _ := strings.Cut(strings.TrimPrefix(grpctest.SayMethod, "/"), "/")
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: svc,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: method, Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(wrapperspb.StringValue)); err != nil {
				return nil, err
			}
			return wrapperspb.String("bad \xff reply"), nil
		}}},
	}, struct{}{})
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	defer func() { s.Stop(); <-done }()
	inst := registry.Instance{ID: "bad", Name: "echo", Endpoints: []string{"grpc://" + ln.Addr().String()}}.String()
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{inst}, "echo", grpcclient.WithClientOptions(client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = say(c)(ctx30(t), "id")
	var ge *grpcclient.Error
	if !errors.As(err, &ge) || status.Code(err) != codes.Internal || !ge.InstanceFailure() || errors.Is(err, grpcclient.ErrUnencodable) {
		t.Fatalf("err = %v; want the instance's INTERNAL, counted against it", err)
	}
}
