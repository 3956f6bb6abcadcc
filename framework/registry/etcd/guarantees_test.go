package etcd

import (
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/registry"
)

var retryIn = regexp.MustCompile(`retry_in=(\S+)`)

// The registrar re-registers forever, at the pace of a capped, jittered
// backoff: a
// record of another address holds its key under a live lease, so every
// attempt is refused, and the registrar keeps trying — 50 times within
// the test's bound, which only a capped backoff can do (uncapped, from
// 5 ms, attempt 50 would come after years) and only one that never gives
// up. Once the other lease is gone the record is ours again.
func TestRegistrar_RetriesForeverWithCappedJitteredBackoff(t *testing.T) {
	prefix := testPrefix(t)
	reg, logs := newTestRegistry(t, shared, prefix, WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	ctx := testCtx(t)
	inst := testInstance(8080)
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, shared)
	key := reg.key(inst)

	other := inst
	other.Endpoints = []string{"http://127.0.0.1:9090"}
	rec, err := registry.EncodeRecord(other)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := raw.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Put(ctx, key, string(rec), clientv3.WithLease(foreign.ID)); err != nil {
		t.Fatal(err)
	}
	const wantFailures = 50
	failures := func() int { return strings.Count(logs.String(), "registration attempt failed") }
	waitFor(t, 15*time.Second, "50 refused attempts", func() bool { return failures() >= wantFailures })
	if st := reg.Status(); st.State != registry.StateRetrying {
		t.Fatalf("status %+v while refused, want retrying", st)
	}
	// Jitter: registrars that lost their records together (a thundering
	// herd after an etcd outage) must not retry in lockstep. At the cap
	// every wait is in [10, 20] ms; without jitter each would be 20 ms.
	waits := map[string]bool{}
	for _, m := range retryIn.FindAllStringSubmatch(logs.String(), -1) {
		waits[m[1]] = true
	}
	if len(waits) < wantFailures/2 {
		t.Fatalf("%d distinct waits between %d attempts: %v; want them jittered", len(waits), failures(), waits)
	}

	if _, err := raw.Revoke(ctx, foreign.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the record back under our lease", func() bool {
		l := leaseOf(t, raw, key)
		return l > 0 && l != int64(foreign.ID) && clientv3.LeaseID(l) == reg.leaseFor(key)
	})
	waitFor(t, 5*time.Second, "status registered", func() bool {
		return reg.Status().State == registry.StateRegistered
	})
	t.Logf("re-registered after %d refused attempts", failures())
}
