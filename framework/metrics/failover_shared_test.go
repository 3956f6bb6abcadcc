package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// gauge reads the series name{labels} from r: its value, and whether it
// exists.
func gauge(t *testing.T, r *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// unanswered is a source whose registry has not answered yet (still
// connecting): it has no set, so a Failover over it publishes nothing.
type unanswered struct{ *registry.Cache }

func (unanswered) Stop() {}

// Several Failovers of one service in a process (an HTTP and a gRPC
// client, the edge, the mesh page) share
// warren_registry_failover_source{service,source}: a source reads 1 while
// any of them has it active. Before, the series was whichever reported
// last: a Failover that started set every source to 0, wiping a live
// sibling's 1 until its own first publication (never, while its local
// registry did not answer), and one stopped while spilling (a
// Registry.Close before its client's Close) left its 1 for the process's
// life, as did the last one stopped on the local source.
func TestDiscovery_FailoverSourceIsSharedByTheFailoversOfAService(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prom := prometheus.NewRegistry()
	d := metrics.NewDiscovery(prom)
	local, remote := memory.New(), memory.New() // dca, dcb
	t.Cleanup(func() { local.Close(); remote.Close() })
	if err := local.Register(ctx, registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://127.0.0.1:1001"}}); err != nil {
		t.Fatal(err)
	}
	if err := remote.Register(ctx, registry.Instance{ID: "user-2", Name: "user", Endpoints: []string{"http://127.0.0.1:2001"}}); err != nil {
		t.Fatal(err)
	}
	src := func(r *memory.Registry) sd.Instancer {
		t.Helper()
		in, err := r.Instancer(ctx, "user")
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	open := func(srcs ...sd.Instancer) *registry.Failover {
		f := registry.NewFailover(srcs...)
		t.Cleanup(f.Stop)
		registry.ReportFailover(f, "user", "datacenter", []string{"dca", "dcb"}, log.NewNopLogger(), d)
		return f
	}
	// The hooks that feed the gauge run inside NewFailover, ReportFailover,
	// Spill and Stop, so each step's value is there when the call returns.
	want := func(step string, dca, dcb float64) {
		t.Helper()
		for _, s := range []struct {
			source string
			v      float64
		}{{"dca", dca}, {"dcb", dcb}} {
			got, ok := gauge(t, prom, "warren_registry_failover_source", map[string]string{"service": "user", "source": s.source})
			if !ok || got != s.v {
				t.Errorf("%s: failover_source{source=%q} = %v (exists %v), want %v", step, s.source, got, ok, s.v)
			}
		}
	}

	f1 := open(src(local), src(remote))
	want("one failover on the local datacenter", 1, 0)
	f2 := open(unanswered{registry.NewCache()}, src(remote))
	want("a second failover started, its local registry not answering yet", 1, 0)
	f2.Stop()
	want("the second stopped", 1, 0)

	f3 := open(src(local), src(remote))
	if !f1.Spill(true) {
		t.Fatal("Spill(true) not held")
	}
	want("the first spills, the third serves the local datacenter", 1, 1)
	f1.Stop() // a Registry.Close before the client's Close: no Spill(false)
	want("the spilling failover stopped", 1, 0)
	f3.Stop()
	want("every failover stopped", 0, 0)
}
