package grpcclient_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// startCounted is startEcho that also hands back the Echo, whose Calls
// counts the handler's runs.
func startCounted(t *testing.T, id string) (*grpctest.Echo, string) {
	t.Helper()
	var e *grpctest.Echo
	s, err := grpcserver.New(func(g *grpc.Server) { e = grpctest.Register(g, id) }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen(transport.Host{Service: "echo", Nonce: id, Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve() //nolint:errcheck // ends with Close below
	t.Cleanup(func() { s.Close() })
	return e, registry.Instance{ID: id, Name: "echo", Endpoints: []string{s.Scheme() + "://" + addr.String()}}.String()
}

// A handler's svcerr.TooLarge travels as RESOURCE_EXHAUSTED but is an
// answer, as HTTP's 413: a non-idempotent call runs the handler once, not
// once per attempt (report j53c 3: 3 times), and the instance is not held
// guilty for it. A quota's and an overload's RESOURCE_EXHAUSTED, refused
// before any work, are still retried on the other instance.
func TestClient_TooLargeIsAnAnswerNotAQuota(t *testing.T) {
	a, ia := startCounted(t, "a")
	b, ib := startCounted(t, "b")
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{ia, ib}, "echo", grpcclient.WithClientOptions(
		client.WithBalancer(newFirstPick()), client.WithOutlier(outlier.WithConsecutiveFailures(2))))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	call := say(c) // not idempotent

	for i := range 5 {
		before := a.Calls.Load() + b.Calls.Load()
		_, err := call(ctx30(t), "fail:too_large:batch_too_large")
		runs := a.Calls.Load() + b.Calls.Load() - before
		if runs != 1 || status.Code(err) != codes.ResourceExhausted || !errors.Is(err, svcerr.New(svcerr.TooLarge, "batch_too_large", "")) {
			t.Fatalf("too_large call %d: handler ran %d times, err %v; want once, the handler's too_large", i, runs, err)
		}
	}
	if st := c.State(); st.Ejected != 0 || st.Retries != 0 {
		t.Fatalf("state %+v after 5 too_large answers: want no retry, no ejection", st)
	}

	for _, refusal := range []string{"fail:unavailable:overloaded", "fail:resource_exhausted:quota_used"} {
		before := b.Calls.Load()
		got, err := call(ctx30(t), "on:a:"+refusal)
		if err != nil || got != "b" || b.Calls.Load() != before+1 {
			t.Fatalf("%s from a = %q, %v (b ran %d → %d); want it retried on b", refusal, got, err, before, b.Calls.Load())
		}
	}
}

// grpc-go's own RESOURCE_EXHAUSTED for a message over a size limit is no
// quota either: a response over the caller's receive limit (4 MiB by
// default) comes after the handler ran, and a non-idempotent call ran it
// once per attempt, 3 times; a request over the server's limit is over
// every instance's. Neither is retried, as HTTP's ErrResponseTooLarge and
// 413 are not.
func TestClient_MessageOverTheSizeLimitIsNotRetried(t *testing.T) {
	var runs atomic.Int64
	big := grpc.ServiceDesc{ServiceName: "warren.test.v1.Echo", HandlerType: (*any)(nil), Methods: []grpc.MethodDesc{
		unaryMethod("Refund", func(context.Context, any, string) (string, error) {
			runs.Add(1)
			return strings.Repeat("x", 5<<20), nil
		}),
	}}
	var insts []string
	for _, id := range []string{"a", "b"} {
		ep := startServing(t, func(g *grpc.Server) { g.RegisterService(&big, new(int)) })
		insts = append(insts, registry.Instance{ID: id, Name: "echo", Endpoints: []string{ep}}.String())
	}
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer(insts), "echo", grpcclient.WithClientOptions(client.WithBalancer(newFirstPick())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = refund(c)(ctx30(t))
	if n := runs.Load(); n != 1 || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("response over the receive limit: handler ran %d times, err %v; want once, RESOURCE_EXHAUSTED", n, err)
	}

	a, ia := startCounted(t, "a")
	b, ib := startCounted(t, "b")
	c2, err := grpcclient.NewFromInstancer(sd.FixedInstancer{ia, ib}, "echo", grpcclient.WithClientOptions(client.WithBalancer(newFirstPick())))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, err = say(c2, grpcclient.Idempotent())(ctx30(t), strings.Repeat("x", 5<<20))
	if st := c2.State(); status.Code(err) != codes.ResourceExhausted || st.Retries != 0 || a.Calls.Load()+b.Calls.Load() != 0 {
		t.Fatalf("request over the server's limit: err %v, state %+v; want RESOURCE_EXHAUSTED after one attempt", err, st)
	}
}
