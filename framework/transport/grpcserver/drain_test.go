package grpcserver_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// A drain given no time (the App's second signal cancels the drain's
// context) with no call in flight cuts nothing: Shutdown returns nil, as
// the HTTP server's does, not ErrDrainTimeout naming 0 calls. Neither an
// idle client connection, which GracefulStop waits on for a GOAWAY round
// trip, nor a health Watch, which ends by itself, is an overrun.
func TestShutdown_AnExpiredDrainWithNothingInFlightIsNoOverrun(t *testing.T) {
	for i := range 5 { // a race decided once could pass by luck
		s := serve(t, "n")
		cc := dial(t, s.ep)
		if _, err := grpctest.Say(context.Background(), cc, "x"); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
		w, err := healthpb.NewHealthClient(cc).Watch(wctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil { // the Watch handler is running
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err = s.Shutdown(ctx)
		wcancel()
		if err != nil {
			t.Fatalf("round %d: Shutdown with nothing in flight = %v, want nil (errors.Is ErrDrainTimeout: %t)", i, err, errors.Is(err, transport.ErrDrainTimeout))
		}
	}
}

// A streaming call of the service that outlasts the drain is cut and
// reported: counting only unary calls, the report named 0 calls.
func TestShutdown_ACutStreamIsReported(t *testing.T) {
	entered := make(chan struct{}, 1)
	desc := grpc.ServiceDesc{
		ServiceName: "warren.test.v1.Hold",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Hold", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			entered <- struct{}{}
			<-ss.Context().Done()
			return ss.Context().Err()
		}}},
	}
	s, err := grpcserver.New(func(g *grpc.Server) { g.RegisterService(&desc, struct{}{}) }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "hold", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		s.Close()
		select {
		case <-served:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return within 20s of Close")
		}
	}()
	cc := dial(t, "grpc://"+addr.String())
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if _, err := cc.NewStream(sctx, &grpc.StreamDesc{ServerStreams: true}, "/warren.test.v1.Hold/Hold"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-sctx.Done():
		t.Fatal("the stream's handler never ran")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = s.Shutdown(ctx)
	if !errors.Is(err, transport.ErrDrainTimeout) || !strings.Contains(err.Error(), "1 stream") {
		t.Fatalf("Shutdown = %v, want ErrDrainTimeout naming 1 stream", err)
	}
}

// Shutdown before Serve has begun (the App's drain racing its Serve
// goroutine) makes the Serve that follows return nil at once and close
// the listener: nothing accepts on the port. A second Shutdown and a
// Close after it return nil.
func TestShutdown_BeforeServeThenServeReturnsAndTheListenerIsClosed(t *testing.T) {
	s, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, "n") }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "echo", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown before Serve = %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve after Shutdown = %v, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve after Shutdown did not return")
	}
	if c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr.String()); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Shutdown and Serve", addr)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after Shutdown = %v", err)
	}
}

// A long-lived stream learns that the drain has begun
// (transport.Draining on its context) and ends itself with a last
// message: the drain ends without cutting it, long before its timeout.
// A unary handler's context carries the same signal.
func TestShutdown_TellsStreamsTheDrainBegan(t *testing.T) {
	entered := make(chan struct{}, 1)
	var unaryHasIt bool
	desc := grpc.ServiceDesc{
		ServiceName: "warren.test.v1.Hold",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{StreamName: "Hold", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
			entered <- struct{}{}
			select {
			case <-transport.Draining(ss.Context()):
				return ss.SendMsg(wrapperspb.String("going away"))
			case <-time.After(30 * time.Second): // past the drain's timeout below
				return nil
			}
		}}},
	}
	s, err := grpcserver.New(func(g *grpc.Server) {
		g.RegisterService(&desc, struct{}{})
		grpctest.Register(g, "n")
	}, grpcserver.WithAddr("127.0.0.1:0"), grpcserver.WithUnaryInterceptors(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		unaryHasIt = transport.Draining(ctx) != nil
		return h(ctx, req)
	}))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "hold", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	defer func() {
		s.Close()
		select {
		case <-served:
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return within 20s of Close")
		}
	}()
	cc := dial(t, "grpc://"+addr.String())
	if _, err := grpctest.Say(context.Background(), cc, "x"); err != nil || !unaryHasIt {
		t.Fatalf("unary call: %v; its context carries the drain signal: %t", err, unaryHasIt)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	st, err := cc.NewStream(sctx, &grpc.StreamDesc{ServerStreams: true}, "/warren.test.v1.Hold/Hold")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-sctx.Done():
		t.Fatal("the stream's handler never ran")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a stream that ends when told = %v; want nil, nothing cut", err)
	}
	var last wrapperspb.StringValue
	if err := st.RecvMsg(&last); err != nil || last.GetValue() != "going away" {
		t.Fatalf("last message %q, %v; want the handler's going away", last.GetValue(), err)
	}
}
