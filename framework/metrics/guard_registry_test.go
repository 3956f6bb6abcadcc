package metrics_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// observability.md, Registry series, and oncall.md, Registry unreachable:
// warren_registry_registered is 0 while the registrar retries (etcd
// down), so the alert "registered == 0 for a minute" fires; it is 1 again
// once re-registered, with warren_registry_reregistrations_total counting
// the loss. warren_registry_skipped_records counts the records under a
// service's prefix discovery does not serve. The series test saw only
// registered=1 and reregistrations=0.
func TestRegistry_RegisteredIsZeroWhileRetryingAndSkippedRecordsCount(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	prom := metrics.NewRegistry()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(2*time.Second),
		etcd.WithPrefix("guard"), etcd.WithObserver(metrics.NewDiscovery(prom)),
		etcd.WithBackoff(50*time.Millisecond, 500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	metrics.RegisterStatus(prom, "user", reg)
	scrape := func(name, labels string) (float64, bool) {
		rec := httptest.NewRecorder()
		metrics.Handler(prom).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return value(rec.Body.String(), name, labels)
	}
	eventually := func(what, name, labels string, ok func(v float64) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // a TTL is 2 s
		for ctx.Err() == nil && time.Now().Before(deadline) {
			if v, present := scrape(name, labels); present && ok(v) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		v, present := scrape(name, labels)
		t.Fatalf("%s: %s{%s} = %v (present %v)", what, name, labels, v, present)
	}

	inst := registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{"http://127.0.0.1:1"}}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	eventually("registered", "warren_registry_registered", `service="user"`, func(v float64) bool { return v == 1 })

	// Junk under the service's prefix: not served, counted.
	raw, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, k := range []string{"junk-1", "junk-2"} {
		if _, err := raw.Put(ctx, "/guard/services/user/"+k, "not json"); err != nil {
			t.Fatal(err)
		}
	}
	in, err := reg.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	eventually("junk counted", "warren_registry_skipped_records", `service="user"`, func(v float64) bool { return v == 2 })
	raw.Close()

	// etcd down: the lease runs out, the registrar retries.
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually("retrying while etcd is down", "warren_registry_registered", `service="user"`, func(v float64) bool { return v == 0 })
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	eventually("re-registered", "warren_registry_registered", `service="user"`, func(v float64) bool { return v == 1 })
	eventually("the loss counted", "warren_registry_reregistrations_total", `service="user"`, func(v float64) bool { return v >= 1 })

	if err := reg.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	eventually("withdrawn", "warren_registry_registered", `service="user"`, func(v float64) bool { return v == 0 })
}
