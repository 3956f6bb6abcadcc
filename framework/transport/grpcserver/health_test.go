package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	healthset "github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// echoService is the full gRPC name of the test service, the name
// grpc.health.v1 clients ask by convention.
const echoService = "warren.test.v1.Echo"

// Health answers for the full names of the services the server serves
// (readiness), lists them, and names them when asked for one it does not
// know (report j50c: "user.v1.UserService" was unknown).
func TestHealth_AnswersForTheFullServiceNames(t *testing.T) {
	r := serve(t, "n1")
	cc := dial(t, r.ep)
	hc := healthpb.NewHealthClient(cc)
	if st := check(t, hc, echoService); st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %q = %s, want SERVING", echoService, st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	list, err := hc.List(ctx, &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := list.GetStatuses()[echoService]; !ok {
		t.Errorf("List = %v, want %q in it", list.GetStatuses(), echoService)
	}
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), echoService) {
		t.Errorf("Check of an unknown service = %v, want NotFound naming %q", err, echoService)
	}
}

// grpc-go's health-checking client, asked to watch a service the server
// does not know, fails calls at once ("health check failed") rather than
// holding them until their deadline (the health import registers that
// client): Watch answers SERVICE_UNKNOWN and
// keeps the stream open, as grpc-go's own server does. (It used to end
// the stream; the client then retried the watch and round_robin queued
// every call until its deadline: report j50c.)
func TestHealth_WatchOfAnUnknownServiceFailsCallsFast(t *testing.T) {
	res := manual.NewBuilderWithScheme("three")
	var addrs []resolver.Address
	for _, nonce := range []string{"n1", "n2", "n3"} {
		addrs = append(addrs, resolver.Address{Addr: strings.TrimPrefix(serve(t, nonce).ep, "grpc://")})
	}
	res.InitialState(resolver.State{Addresses: addrs})
	cc, err := grpc.NewClient("three:///echo", grpc.WithResolvers(res),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":"no.such.Service"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = grpctest.Say(ctx, cc, "id")
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call %d with health checking of an unknown service = %v, want Unavailable (health check failed) before the deadline", i, err)
		}
	}
}

// A service that registers its own grpc.health.v1 gets an error from
// Listen naming the conflict; grpc-go would end the process with a FATAL
// log (report j50c).
func TestListen_RefusesTheServicesOwnHealthService(t *testing.T) {
	s, err := grpcserver.New(func(g *grpc.Server) {
		grpctest.Register(g, "n1")
		healthpb.RegisterHealthServer(g, health.NewServer())
	}, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Listen(transport.Host{Service: "echo", Nonce: "n1", Live: healthset.NewSet(time.Second), Ready: healthset.NewSet(time.Second)})
	if err == nil || !strings.Contains(err.Error(), "grpc.health.v1.Health") {
		t.Fatalf("Listen = %v, want an error naming grpc.health.v1.Health", err)
	}
}

// A client keeping its connection alive with pings every 10 s (grpc-go's
// shortest), on a call in flight and idle, is never sent away: grpc-go's
// default server policy answers the third such ping with GOAWAY
// "too_many_pings" and ended a call in flight at 40 s (report j50c).
func TestKeepalive_ClientPingsEvery10sAreAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 45s")
	}
	t.Parallel()
	r := serve(t, "n1")
	cc, err := grpc.NewClient("passthrough:///"+strings.TrimPrefix(r.ep, "grpc://"),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if got, err := grpctest.Say(ctx, cc, "sleep:45s"); err != nil || got != "ok" {
		t.Fatalf("a 45s call with keepalive pings every 10s = %q, %v; want ok", got, err)
	}
}

// readinessSet is an App's readiness set in miniature: the registration,
// draining and one check of the service's own, each failing while its
// flag is set.
type readinessSet struct {
	set                            *healthset.Set
	unregistered, draining, dbDown atomic.Bool
}

func newReadinessSet() *readinessSet {
	r := &readinessSet{set: healthset.NewSet(time.Second)}
	failIf := func(b *atomic.Bool, msg string) healthset.Check {
		return func(context.Context) error {
			if b.Load() {
				return errors.New(msg)
			}
			return nil
		}
	}
	r.set.Add(transport.RegisteredCheck, failIf(&r.unregistered, "retrying: registry unreachable"))
	r.set.Add("draining", failIf(&r.draining, "draining"))
	r.set.Add("db", failIf(&r.dbDown, "db down"))
	return r
}

// "" and the service's names answer SERVING while only the registration
// fails (a registry outage fails it on every instance at once: with it,
// grpc-go's health-checking client failed every call, report j60b F3);
// "readiness" still counts it, as /readyz does. Draining and the
// service's own checks make every readiness name NOT_SERVING, Check,
// List and Watch alike.
func TestHealth_DefaultNamesLeaveTheRegistrationOut(t *testing.T) {
	rs := newReadinessSet()
	rs.unregistered.Store(true)
	r := serveHost(t, transport.Host{Service: "echo", Nonce: "n1", Live: healthset.NewSet(time.Second), Ready: rs.set},
		grpcserver.WithWatchInterval(20*time.Millisecond))
	hc := healthpb.NewHealthClient(dial(t, r.ep))
	serving := []string{"", "echo", echoService}
	want := func(phase string, names []string, st healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, name := range names {
			if got := check(t, hc, name); got != st {
				t.Errorf("%s: Check(%q) = %s, want %s", phase, name, got, st)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const outage = "registration failing"
	want(outage, serving, healthpb.HealthCheckResponse_SERVING)
	want(outage, []string{grpcserver.ReadinessService}, healthpb.HealthCheckResponse_NOT_SERVING)
	list, err := hc.List(ctx, &healthpb.HealthListRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]healthpb.HealthCheckResponse_ServingStatus{
		"": healthpb.HealthCheckResponse_SERVING, echoService: healthpb.HealthCheckResponse_SERVING,
		grpcserver.ReadinessService: healthpb.HealthCheckResponse_NOT_SERVING,
	} {
		if got := list.GetStatuses()[name].GetStatus(); got != st {
			t.Errorf("%s: List[%q] = %s, want %s", outage, name, got, st)
		}
	}
	watch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: ""})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("%s: Watch(\"\") first = %v, %v; want SERVING", outage, m, err)
	}
	rwatch, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{Service: grpcserver.ReadinessService})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := rwatch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("%s: Watch(readiness) first = %v, %v; want NOT_SERVING", outage, m, err)
	}

	// Only the registration is left out: the service's own checks count.
	rs.dbDown.Store(true)
	want("db failing", append(serving, grpcserver.ReadinessService), healthpb.HealthCheckResponse_NOT_SERVING)
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("db failing: Watch(\"\") next = %v, %v; want NOT_SERVING", m, err)
	}
	rs.dbDown.Store(false)
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("db back: Watch(\"\") next = %v, %v; want SERVING", m, err)
	}

	// Withdrawing: every readiness name, the registration alive or not.
	rs.draining.Store(true)
	for _, unregistered := range []bool{true, false} {
		rs.unregistered.Store(unregistered)
		want(fmt.Sprintf("draining (registration failing: %v)", unregistered),
			append(serving, grpcserver.ReadinessService), healthpb.HealthCheckResponse_NOT_SERVING)
	}
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("draining: Watch(\"\") next = %v, %v; want NOT_SERVING", m, err)
	}
	want("draining", []string{grpcserver.LivenessService}, healthpb.HealthCheckResponse_SERVING)
}
