package shed

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/grpctransport"
)

// fullInterceptor is an interceptor over a limiter with its one slot
// taken, and a count of the calls its handler ran.
func fullInterceptor(t *testing.T, opts ...GRPCOption) (*int, func(context.Context, string) error) {
	t.Helper()
	l := mustNew(t, WithQueueProbe(nil), WithLimits(1, 1, 1))
	tok, _ := l.Acquire()
	t.Cleanup(tok.Release)
	ic, err := UnaryServerInterceptor(l, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ran := new(int)
	call := func(ctx context.Context, method string) error {
		_, err := ic(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) { *ran++; return nil, nil })
		return err
	}
	return ran, call
}

// Health checks answer on a full instance; other calls get
// RESOURCE_EXHAUSTED with a RetryInfo of the default 1 s.
func TestUnaryServerInterceptor_HealthNeverShedOthersRefusedWithRetryInfo(t *testing.T) {
	ran, call := fullInterceptor(t)
	if err := call(context.Background(), grpctransport.HealthMethodPrefix+"Check"); err != nil || *ran != 1 {
		t.Fatalf("health check on a full instance: err %v, handler ran %d; want it served", err, *ran)
	}
	err := call(context.Background(), "/user.v1.User/Get")
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted || *ran != 1 {
		t.Fatalf("call on a full instance: %v, handler ran %d; want RESOURCE_EXHAUSTED and no handler", err, *ran)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != time.Second {
		t.Fatalf("RetryInfo %s, want the default 1s", delay)
	}
}

// A call whose caller has gone is dropped: no handler, no refusal.
func TestUnaryServerInterceptor_CallerGoneIsDropped(t *testing.T) {
	l := mustNew(t, WithQueueProbe(nil))
	ic, err := UnaryServerInterceptor(l)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := 0
	_, err = ic(ctx, nil, &grpc.UnaryServerInfo{FullMethod: "/user.v1.User/Get"}, func(context.Context, any) (any, error) { ran++; return nil, nil })
	if !errors.Is(err, context.Canceled) || ran != 0 {
		t.Fatalf("cancelled call: err %v, handler ran %d; want context.Canceled and no handler", err, ran)
	}
	if st := l.Stats(); st.Admitted != 0 {
		t.Fatalf("stats %+v, want the cancelled call not admitted", st)
	}
}
