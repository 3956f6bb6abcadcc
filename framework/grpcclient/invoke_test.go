package grpcclient_test

import (
	"context"
	"net"
	"testing"

	"github.com/go-kit/kit/sd"
	kitgrpc "github.com/go-kit/kit/transport/grpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/requestid"
)

// A method without ClientOptions is invoked by grpcclient itself, one
// with them through go-kit's client: both must send the same call — the
// request ID and idempotency key as metadata, in place of any outgoing
// metadata the caller's context carried (go-kit's client replaces it) —
// and hand the encoder the method's name in its context.
func TestEndpoint_DirectCallMatchesGoKitClient(t *testing.T) {
	type seen struct {
		md     metadata.MD
		method any
	}
	got := make(chan metadata.MD, 1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md
		return h(ctx, req)
	}))
	grpctest.Register(s, "only")
	go s.Serve(ln) //nolint:errcheck // ends with Stop below
	t.Cleanup(s.Stop)
	inst := registry.Instance{ID: "only", Name: "echo", Endpoints: []string{"grpc://" + ln.Addr().String()}}.String()
	c, err := grpcclient.NewFromInstancer(sd.FixedInstancer{inst}, "echo", grpcclient.WithClientOptions(client.WithoutOutlier()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	call := func(ctx context.Context, opts ...grpcclient.EndpointOption) seen {
		t.Helper()
		var method any
		ep := grpcclient.NewEndpoint(c, grpctest.SayMethod,
			func(ctx context.Context, r any) (any, error) {
				method = ctx.Value(kitgrpc.ContextKeyRequestMethod)
				return wrapperspb.String(r.(string)), nil
			},
			func(_ context.Context, r any) (any, error) { return r.(*wrapperspb.StringValue).GetValue(), nil },
			&wrapperspb.StringValue{}, opts...)
		if out, err := ep(ctx, "hello"); err != nil || out != "hello" {
			t.Fatalf("call = %v, %v; want hello", out, err)
		}
		return seen{md: <-got, method: method}
	}
	noop := grpcclient.ClientOptions(kitgrpc.ClientBefore(func(ctx context.Context, _ *metadata.MD) context.Context { return ctx }))
	base := context.Background()
	withMD := metadata.AppendToOutgoingContext(base, "x-caller", "c1")
	for _, tc := range []struct {
		name string
		ctx  func() context.Context // each call's: a served call counts the keyed calls it makes
		opts []grpcclient.EndpointOption
	}{
		{"plain", func() context.Context { return base }, nil},
		{"caller metadata", func() context.Context { return withMD }, nil},
		{"request ID and caller metadata", func() context.Context { return requestid.NewContext(withMD, "req-1") }, nil},
		{"keyed inside a keyed call", func() context.Context {
			return idempotency.NewContext(requestid.NewContext(base, "req-2"), "upstream-1")
		}, []grpcclient.EndpointOption{grpcclient.Keyed()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := call(tc.ctx(), tc.opts...)
			viaKit := call(tc.ctx(), append(tc.opts, noop)...)
			if direct.method != grpctest.SayMethod || viaKit.method != grpctest.SayMethod {
				t.Errorf("encoder saw method %v (direct), %v (go-kit); want %s", direct.method, viaKit.method, grpctest.SayMethod)
			}
			for _, k := range []string{grpctransport.RequestIDKey, grpctransport.IdempotencyKey, "x-caller"} {
				d, g := direct.md.Get(k), viaKit.md.Get(k)
				if len(d) != len(g) || (len(d) > 0 && d[0] != g[0]) {
					t.Errorf("metadata %s: direct sent %q, go-kit's client %q", k, d, g)
				}
			}
			if id, ok := requestid.FromContext(tc.ctx()); ok && len(direct.md.Get(grpctransport.RequestIDKey)) == 0 {
				t.Errorf("request ID %s not sent", id)
			}
			if tc.opts != nil && len(direct.md.Get(grpctransport.IdempotencyKey)) == 0 {
				t.Error("keyed call sent no idempotency key")
			}
		})
	}

	// Two keyed calls to one method inside one served call (a debit and
	// a credit) are two effects: two keys. The call served again (a
	// retry upstream) repeats both.
	keys := func() []string {
		served := idempotency.NewServedContext(base, "upstream-2")
		return []string{
			call(served, grpcclient.Keyed()).md.Get(grpctransport.IdempotencyKey)[0],
			call(served, grpcclient.Keyed()).md.Get(grpctransport.IdempotencyKey)[0],
		}
	}
	first, again := keys(), keys()
	if first[0] == first[1] || first[0] != again[0] || first[1] != again[1] {
		t.Errorf("keys of two keyed calls to one method in a served call %q, served again %q; want two keys, repeated", first, again)
	}
}
