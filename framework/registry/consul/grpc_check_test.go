package consul

import (
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// TestRegistry_GRPCCheckFollowsTheHealthServer registers an instance
// whose gRPC endpoint is a real grpc-go server running
// google.golang.org/grpc/health. Consul's grpc check follows what the
// health server says and whether it answers at all: NOT_SERVING and a
// stopped server turn it critical, SERVING and a restarted server passing
// again, and the instancer's passing set follows.
func TestRegistry_GRPCCheckFollowsTheHealthServer(t *testing.T) {
	a := needAgent(t)
	srv := startCheckedServer(t, CheckGRPC)
	r := newRegistry(t, a.Addr(), WithChecks(Check{Kind: CheckGRPC, Interval: time.Second, Timeout: time.Second}))
	inst := srv.instance("grpc-1", "grpc-svc")
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name))
	if err := r.Register(ctxT(t, 5*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	id := checkID(inst.ID, CheckGRPC)
	steps := []struct {
		what   string
		do     func()
		status string
	}{
		{"SERVING", func() {}, api.HealthPassing},
		{"NOT_SERVING", func() { srv.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING) }, api.HealthCritical},
		{"SERVING again", func() { srv.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING) }, api.HealthPassing},
		{"server stopped", srv.down, api.HealthCritical},
		{"server back on its port", srv.up, api.HealthPassing},
	}
	for _, s := range steps {
		s.do()
		if s.status == api.HealthPassing {
			rec.WaitFor(t, 10*time.Second, s.what+": in the passing set", registrytest.Has(inst.ID))
		} else {
			rec.WaitFor(t, 10*time.Second, s.what+": out of the passing set", registrytest.Lacks(inst.ID))
		}
		waitCheckOutput(t, r, id, s.status)
	}
}
