package grpctransport_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// A gRPC service whose HTTP dependency's call got a Warren server's 408
// body_timeout (kind Unavailable: the body did not reach the instance in
// time) and that returns that error as it came answers UNAVAILABLE,
// reason body_timeout, passed on — the code of the kind HTTP answers 503
// for — and its Warren caller rebuilds the same kind and code. Before,
// the 408 read as Internal: INTERNAL "internal error", a bug of the
// service in the middle.
func TestPassedOn_BodyTimeoutIsUnavailableOverGRPC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The HTTP dependency: a Warren server behind a path that loses
	// request bodies.
	type chargeReq struct {
		N int `json:"n"`
	}
	var charged atomic.Int64
	rt := httptransport.NewRouter()
	rt.Handle("POST /charge", httptransport.NewServer(func(context.Context, any) (any, error) {
		charged.Add(1)
		return struct{}{}, nil
	}, httptransport.DecodeJSON[chargeReq](), httptransport.EncodeJSON, log.NewNopLogger()))
	dep := httptest.NewServer(httptransport.Handler(rt, log.NewNopLogger(), 0, httptransport.WithBodyTimeouts(2*time.Second, 50*time.Millisecond)))
	t.Cleanup(dep.Close)
	path := startBodylessPath(t, dep.Listener.Addr().String())
	host, port, _ := net.SplitHostPort(path.Addr().String())
	p, _ := net.LookupPort("tcp", port)
	depInst := registry.Instance{ID: "payment-1", Name: "payment", Endpoints: []string{registry.EndpointURL("http", host, p)}}
	payment, err := client.NewFromInstancer(sd.FixedInstancer{depInst.String()}, "payment", client.WithRetry(retry.WithMaxAttempts(1)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { payment.Close() })

	// The gRPC service in the middle: Checkout.Pay charges through
	// payment and returns its error as it came.
	var paid atomic.Int64
	pay := func(ctx context.Context, _ string) (string, error) {
		paid.Add(1)
		_, err := client.Call[chargeReq, struct{}](ctx, payment, http.MethodPost, "/charge", chargeReq{N: 1})
		return "", err
	}
	s, err := grpcserver.New(func(g *grpc.Server) { g.RegisterService(&checkoutDesc, payer(pay)) }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "checkout", Nonce: "c", Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve() //nolint:errcheck // ends with Close below
	t.Cleanup(func() { s.Close() })

	// Its Warren gRPC caller.
	inst := registry.Instance{ID: "checkout-1", Name: "checkout", Endpoints: []string{s.Scheme() + "://" + addr.String()}}.String()
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{inst}, "checkout",
		grpcclient.WithClientOptions(client.WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	call := grpcclient.NewEndpoint(c, payMethod,
		func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
		func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
		&wrapperspb.StringValue{})

	_, err = call(ctx, "order-1")
	var ge *grpcclient.Error
	if !errors.As(err, &ge) || ge.Status.Code() != codes.Unavailable || !grpctransport.PassedOn(ge.Status) ||
		!strings.Contains(ge.Status.Message(), httptransport.ErrBodyTimeout.Error()) {
		t.Fatalf("Pay: err = %v; want UNAVAILABLE saying %q, passed on", err, httptransport.ErrBodyTimeout)
	}
	var se *svcerr.Error
	if !errors.As(err, &se) || se.Kind != svcerr.Unavailable || se.Code != httptransport.CodeBodyTimeout || !se.FromPeer() {
		t.Fatalf("Pay: rebuilt %+v; want kind %s, code %s, a peer's", se, svcerr.Unavailable, httptransport.CodeBodyTimeout)
	}
	if got, want := grpctransport.CodeForKind(httptransport.KindForStatus(http.StatusRequestTimeout)), codes.Unavailable; got != want {
		t.Fatalf("a 408 passed on over gRPC is %s, want %s", got, want)
	}
	// A plain call the middle service may have acted on is not replayed,
	// and the dependency's method never ran.
	if n, m := paid.Load(), charged.Load(); n != 1 || m != 0 {
		t.Fatalf("Pay ran %d times and Charge %d; want 1 and 0", n, m)
	}
}

const payMethod = "/warren.test.v1.Checkout/Pay"

type payer func(context.Context, string) (string, error)

// checkoutDesc is a one-method gRPC service written by hand (no protoc),
// as grpctest's Echo is.
var checkoutDesc = grpc.ServiceDesc{
	ServiceName: "warren.test.v1.Checkout",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Pay",
		Handler: func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			req := new(wrapperspb.StringValue)
			if err := dec(req); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, r any) (any, error) {
				out, err := srv.(payer)(ctx, r.(*wrapperspb.StringValue).GetValue())
				if err != nil {
					return nil, err
				}
				return wrapperspb.String(out), nil
			}
			if in == nil {
				return call(ctx, req)
			}
			return in(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: payMethod}, call)
		},
	}},
}

// startBodylessPath is a TCP relay to addr that passes each request's
// header block on and loses every byte after it (a link that stalls
// mid-request), and passes the answers back whole: the instance waits for
// the body until its body timeout. Its goroutines end with the test.
func startBodylessPath(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	relay := func(c net.Conn) {
		defer c.Close()
		s, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil || !track(s) {
			return
		}
		defer s.Close()
		wg.Go(func() {
			defer s.Close()
			br := bufio.NewReader(c)
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					return
				}
				if _, err := s.Write(line); err != nil {
					return
				}
				if len(bytes.TrimSpace(line)) == 0 {
					break
				}
			}
			_, _ = io.Copy(io.Discard, br)
		})
		_, _ = io.Copy(c, s)
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if track(c) {
				wg.Go(func() { relay(c) })
			}
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln
}
