package reqmeta_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// TestGuard_NewContextComesBeforeTheGRPCCallsMetadata: docs/middleware.md
// says metadata put in the context with reqmeta.NewContext comes first,
// over a gRPC call's incoming metadata. A server-side interceptor of the
// service's that sets its own (a tenant taken from the peer's certificate,
// say) must not be overridden by what the caller sent. Over a real gRPC
// server, the endpoint reads the metadata the interceptor put.
func TestGuard_NewContextComesBeforeTheGRPCCallsMetadata(t *testing.T) {
	var mu sync.Mutex
	var seen reqmeta.Metadata
	var seenOK bool
	mine := reqmeta.Metadata{Transport: "grpc", Route: "mine", Header: map[string][]string{"x-tenant": {"from-the-server"}}}
	interceptor := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if grpctransport.IsHealthMethod(info.FullMethod) { // the self-check's
			return h(ctx, req)
		}
		ctx = reqmeta.NewContext(ctx, mine)
		mu.Lock()
		seen, seenOK = reqmeta.FromContext(ctx)
		mu.Unlock()
		return h(ctx, req)
	}
	a := grpctest.StartAppServing(t, memory.New(), "metaorder", "metaorder-1", []grpcserver.Option{grpcserver.WithUnaryInterceptors(interceptor)})
	ep, ok := a.Instance().Endpoint("grpc")
	if !ok {
		t.Fatalf("no grpc endpoint in %+v", a.Instance())
	}
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-tenant", "from-the-caller")
	if _, err := grpctest.Say(ctx, cc, "hello"); err != nil {
		t.Fatalf("call: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !seenOK || seen.Route != "mine" || seen.Get("x-tenant") != "from-the-server" {
		t.Fatalf("FromContext = %+v (ok %v); want the metadata NewContext put, not the call's (x-tenant from-the-caller)", seen, seenOK)
	}
}
