package grpcserver_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// The App publishes the gRPC endpoint with the HTTP one, in one record the
// registry really stores; the published endpoint answers; during the grace
// period after a withdrawal grpc.health.v1 says NOT_SERVING while calls
// still succeed, and the App exits cleanly after draining.
func TestApp_PublishesTheGRPCEndpointAndReportsNotServingDuringGrace(t *testing.T) {
	for _, regName := range []string{"etcd", "consul"} {
		t.Run(regName, func(t *testing.T) {
			reg := regs.Open(t, regName)
			svc := "grpcsvc" + regName
			var echo *grpctest.Echo
			gs, err := grpcserver.New(func(g *grpc.Server) { echo = grpctest.Register(g, "one") }, grpcserver.WithAddr("127.0.0.1:0"))
			if err != nil {
				t.Fatal(err)
			}
			a, err := app.New(svc, http.NotFoundHandler(), reg, app.WithServer(gs), app.WithListen("127.0.0.1:0"),
				app.WithSignals(false), app.WithGracePeriod(3*time.Second), app.WithSelfCheckTimeout(20*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			select {
			case <-a.Ready():
			case err := <-done:
				t.Fatalf("Run returned before ready: %v", err)
			case <-time.After(60 * time.Second):
				t.Fatal("not ready within 60s")
			}

			// What the registry stores carries the grpc endpoint.
			ep := discoveredGRPC(t, reg, svc)
			if ep != mustEndpoint(t, a.Instance()) {
				t.Fatalf("discovered %s, App advertises %s", ep, mustEndpoint(t, a.Instance()))
			}
			cc := dial(t, ep)
			if got, err := grpctest.Say(ctx, cc, "id"); err != nil || got != "one" {
				t.Fatalf("Say(id) = %q, %v", got, err)
			}
			hc := healthpb.NewHealthClient(cc)
			for _, name := range []string{"", svc, grpcserver.ReadinessService, grpcserver.LivenessService} {
				if st := check(t, hc, name); st != healthpb.HealthCheckResponse_SERVING {
					t.Fatalf("health %q = %s while running, want SERVING", name, st)
				}
			}
			wctx, wcancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer wcancel()
			watch, err := hc.Watch(wctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("first watch answer %v, %v; want SERVING", r, err)
			}

			cancel() // withdraw, then 3s of grace
			deadline := time.Now().Add(20 * time.Second)
			for check(t, hc, "") != healthpb.HealthCheckResponse_NOT_SERVING {
				if time.Now().After(deadline) {
					t.Fatal("readiness not NOT_SERVING within 20s of the withdrawal")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Fatalf("watch after withdrawal: %v, %v; want NOT_SERVING", r, err)
			}
			// Still answering calls and liveness during grace.
			before := echo.Calls.Load()
			if got, err := grpctest.Say(context.Background(), cc, "id"); err != nil || got != "one" {
				t.Fatalf("Say during grace = %q, %v", got, err)
			}
			if echo.Calls.Load() != before+1 {
				t.Fatal("the call during grace was not answered by the service")
			}
			if st := check(t, hc, grpcserver.LivenessService); st != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("liveness during grace = %s", st)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Fatal("Run did not return within 60s")
			}
			// The watch ended with the server.
			for range 3 {
				if _, err := watch.Recv(); err != nil {
					return
				}
			}
			t.Fatal("watch stream still open after the server stopped")
		})
	}
}

func mustEndpoint(t *testing.T, inst registry.Instance) string {
	t.Helper()
	ep, ok := inst.Endpoint("grpc")
	if !ok {
		t.Fatalf("instance %+v has no grpc endpoint", inst)
	}
	return ep
}

// discoveredGRPC waits for the registry to list svc and returns its grpc
// endpoint.
func discoveredGRPC(t *testing.T, reg registry.Registry, svc string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := reg.Instancer(ctx, svc)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Stop()
	var got atomic.Value
	ch := make(chan struct{}, 1)
	events := make(chan sd.Event, 16)
	src.Register(events)
	defer func() { src.Deregister(events); close(events) }()
	go func() {
		for ev := range events {
			for _, s := range ev.Instances {
				inst, err := registry.ParseInstance(s)
				if err != nil {
					continue
				}
				if ep, ok := inst.Endpoint("grpc"); ok {
					got.Store(ep)
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	select {
	case <-ch:
		return got.Load().(string)
	case <-ctx.Done():
		t.Fatalf("%s not discovered with a grpc endpoint within 30s", svc)
		return ""
	}
}

func dial(t *testing.T, ep string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(strings.TrimPrefix(ep, "grpc://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func check(t *testing.T, hc healthpb.HealthClient, service string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		t.Fatalf("health Check(%q): %v", service, err)
	}
	return r.GetStatus()
}
