package reqmeta_test

import (
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/warren-mesh/warren/framework/grpctransport"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/jwtauth"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/reqmeta"
	"github.com/warren-mesh/warren/framework/svcerr"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// A call served over gRPC carries its metadata in the endpoint's
// context as an HTTP request does (docs/middleware.md: "another
// transport fills the same struct"): the metadata's keys, the peer, the
// transport and the full method. Without it, endpoint middleware written
// against reqmeta failed every gRPC call: jwtauth answered a valid token
// INTERNAL ("no request metadata in the context").
func TestFromContext_GRPCCallCarriesItsMetadata(t *testing.T) {
	key := []byte("test-key")
	auth := jwtauth.Middleware(func(*jwt.Token) (any, error) { return key, nil }, jwt.WithValidMethods([]string{"HS256"}))
	var mu sync.Mutex
	var seen reqmeta.Metadata
	var seenOK bool
	// An endpoint behind jwtauth, run as the call's handler: what a
	// generated gRPC server's endpoint sees.
	endpointMW := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if grpctransport.IsHealthMethod(info.FullMethod) { // the self-check's
			return h(ctx, req)
		}
		ep := auth(func(ctx context.Context, _ any) (any, error) {
			mu.Lock()
			seen, seenOK = reqmeta.FromContext(ctx)
			mu.Unlock()
			return nil, nil
		})
		if _, err := ep(ctx, req); err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
	a := grpctest.StartAppServing(t, memory.New(), "meta", "meta-1", []grpcserver.Option{grpcserver.WithUnaryInterceptors(endpointMW)})
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
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "ada", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok, "X-Tenant", "acme")
	if _, err := grpctest.Say(ctx, cc, "hello"); err != nil {
		t.Fatalf("call with a valid token: %v (kind %s); want it served", err, svcerr.KindOf(grpctransport.FromStatus(grpctransport.Status(err))))
	}
	mu.Lock()
	defer mu.Unlock()
	if !seenOK {
		t.Fatal("no metadata in the endpoint's context")
	}
	if seen.Transport != "grpc" || seen.Route != grpctest.SayMethod || seen.Peer == "" || seen.Get("x-tenant") != "acme" || seen.Get("X-Tenant") != "acme" {
		t.Errorf("metadata %+v; want transport grpc, route %s, a peer and x-tenant acme", seen, grpctest.SayMethod)
	}
}
