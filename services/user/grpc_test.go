package user

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/services/user/userpb"
)

// regs are the real registries of this package's gRPC tests (an embedded
// etcd and a Consul agent, bin/consul).
var regs *grpctest.Registries

func TestMain(m *testing.M) {
	var err error
	if regs, err = grpctest.StartRegistries(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	regs.Close()
	os.Exit(code)
}

// startGRPCApp runs one user instance serving HTTP and the generated gRPC
// transport on free loopback ports, registered in reg (the App's own
// client, closed with it), until the test ends.
func startGRPCApp(t *testing.T, reg registry.Registry, id string, store Store) {
	t.Helper()
	e := MakeEndpoints(New(store))
	gs, err := NewGRPCTransport(e, []grpcserver.Option{grpcserver.WithAddr("127.0.0.1:0")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ServiceName, NewHTTPHandler(e, nil), reg, app.WithServer(gs), app.WithListen("127.0.0.1:0"),
		app.WithID(id), app.WithSignals(false), app.WithGracePeriod(0), app.WithSelfCheckTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }() // ends when cancel is called below
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Errorf("%s did not stop within 60s", id)
		}
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("%s stopped before ready: %v", id, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready within 60s", id)
	}
}

// The generated gRPC service, two instances registered in a real etcd and
// a real Consul, answers through the generated client (NewGRPCClient:
// Warren's balancer, errors.Is on the service's errors) and through a
// plain grpc-go client on warren:/// with the generated stubs.
func TestGRPC_GeneratedClientAndPlainGRPCGo(t *testing.T) {
	for _, name := range []string{"etcd", "consul"} {
		t.Run(name, func(t *testing.T) {
			store := NewMemoryStore() // shared: what one instance creates, the other finds
			startGRPCApp(t, regs.Open(t, name), "user-grpc-a", store)
			startGRPCApp(t, regs.Open(t, name), "user-grpc-b", store)
			disc := regs.Open(t, name)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			users, err := NewGRPCClient(ctx, disc)
			if err != nil {
				t.Fatal(err)
			}
			defer users.Close()
			u, err := users.Create(ctx, CreateRequest{Name: "Ada Lovelace", Email: "ada@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			for range 6 { // both instances, whichever the balancer picks
				got, err := users.Get(ctx, GetRequest{ID: u.ID})
				if err != nil || got.ID != u.ID || got.Name != "Ada Lovelace" || got.Email != u.Email || !got.Created.Equal(u.Created) || u.Created.IsZero() {
					t.Fatalf("Get over gRPC = %+v, %v; want %+v", got, err, u)
				}
			}
			page, err := users.List(ctx, ListRequest{Limit: 10})
			if err != nil || len(page.Users) != 1 || page.Users[0].ID != u.ID {
				t.Fatalf("List over gRPC = %+v, %v", page, err)
			}
			if _, err := users.Get(ctx, GetRequest{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get(unknown) over gRPC = %v; want errors.Is ErrNotFound", err)
			}
			if _, err := users.Create(ctx, CreateRequest{Name: "Eve", Email: "ada@example.com"}); !errors.Is(err, ErrEmailTaken) {
				t.Fatalf("Create(taken email) over gRPC = %v; want errors.Is ErrEmailTaken", err)
			}

			// Create is keyed: inside a keyed call being served, the generated
			// client derives its key from the incoming one, so a repeated
			// upstream call repeats the Create instead of making a second user.
			up := idempotency.NewContext(ctx, "upstream-"+name)
			k1, err := users.Create(up, CreateRequest{Name: "Alan Turing", Email: "alan@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if k2, err := users.Create(up, CreateRequest{Name: "Alan Turing", Email: "alan@example.com"}); err != nil || k2.ID != k1.ID {
				t.Fatalf("repeated keyed Create over gRPC = %+v, %v; want the first call's user %s", k2, err, k1.ID)
			}

			b, err := grpcresolver.NewBuilder(disc)
			if err != nil {
				t.Fatal(err)
			}
			cc, err := grpc.NewClient("warren:///"+ServiceName, grpc.WithResolvers(b),
				grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			plain := userpb.NewUserServiceClient(cc)
			got, err := plain.Get(ctx, &userpb.GetRequest{Id: u.ID}, grpc.WaitForReady(true))
			if err != nil || got.GetName() != "Ada Lovelace" || !got.GetCreated().AsTime().Equal(u.Created) {
				t.Fatalf("plain grpc-go Get = %v, %v", got, err)
			}
			if _, err := plain.Get(ctx, &userpb.GetRequest{Id: "nobody"}); status.Code(err) != codes.NotFound {
				t.Fatalf("plain grpc-go Get(unknown) = %v; want NOT_FOUND", err)
			}
			// A keyed Create: the idempotency key travels as metadata, so
			// the same key twice is one user, not "email taken".
			kctx := metadata.AppendToOutgoingContext(ctx, "idempotency-key", "grace-1-"+name)
			first, err := plain.Create(kctx, &userpb.CreateRequest{Name: "Grace Hopper", Email: "grace@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			again, err := plain.Create(kctx, &userpb.CreateRequest{Name: "Grace Hopper", Email: "grace@example.com"})
			if err != nil || again.GetId() != first.GetId() {
				t.Fatalf("the same key twice = %v, %v; want the first call's user %s", again, err, first.GetId())
			}
		})
	}
}

// The same instance, one registration, still answers HTTP: the generated
// HTTP client finds it through the record that also carries grpc://.
func TestGRPC_HTTPStillServed(t *testing.T) {
	startGRPCApp(t, regs.Open(t, "etcd"), "user-http-too", NewMemoryStore())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	users, err := NewClient(ctx, regs.Open(t, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	u, err := users.Create(ctx, CreateRequest{Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := users.Get(ctx, GetRequest{ID: u.ID}); err != nil {
		t.Fatalf("Get over HTTP: %v", err)
	}
	if _, err := users.Get(ctx, GetRequest{ID: "nobody"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown) over HTTP = %v; want ErrNotFound", err)
	}
}
