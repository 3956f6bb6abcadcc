package etcd

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
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
	reg, logs := newTestRegistry(t, shared, testPrefix(t), WithBackoff(5*time.Millisecond, 20*time.Millisecond))
	ctx := testCtx(t)
	inst, raw, key := registerOnShared(t, ctx, reg)

	foreign := takeOver(t, raw, key, inst)
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

	if _, err := raw.Revoke(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the record back under our lease", func() bool {
		l := leaseOf(t, raw, key)
		return l > 0 && l != int64(foreign) && clientv3.LeaseID(l) == reg.leaseFor(key)
	})
	waitFor(t, 5*time.Second, "status registered", func() bool {
		return reg.Status().State == registry.StateRegistered
	})
	t.Logf("re-registered after %d refused attempts", failures())
}

// skipObserver records the last Skipped count.
type skipObserver struct {
	registry.NopObserver
	mu sync.Mutex
	n  int
}

func (o *skipObserver) Skipped(_ string, n int) {
	o.mu.Lock()
	o.n = n
	o.mu.Unlock()
}

func (o *skipObserver) get() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}

// Junk under a service's prefix costs one log line per listing, not one
// per key (50k junk keys were 50k lines per client per re-list), and its
// count is a metric. A record without a lease at an instance's key — it
// would never expire, and points wherever its writer chose — is never
// routed to.
func TestInstancer_SkippedRecordsAreOneLinePerListingAndAMetric_LeaselessNeverRouted(t *testing.T) {
	prefix := testPrefix(t)
	obs := &skipObserver{}
	r, logs := newTestRegistry(t, shared, prefix, WithObserver(obs))
	raw := rawClient(t, shared)
	ctx := testCtx(t)
	good, hijacked := testInstance(8080), testInstance(8081)
	putRecord(t, raw, r, good)
	svc := "/" + prefix + "/services/user/"
	const junk = 200
	var ops []clientv3.Op
	for i := range junk {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sjunk-%03d", svc, i), "not json"))
	}
	for len(ops) > 0 { // etcd takes at most 128 operations per transaction
		n := min(100, len(ops))
		if _, err := raw.Txn(ctx).Then(ops[:n]...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[n:]
	}
	elsewhere := hijacked
	elsewhere.Endpoints = []string{"http://10.9.9.9:8081"} // the instance's ID, someone else's address, no lease
	if _, err := raw.Put(ctx, r.key(hijacked), mustRecord(t, elsewhere)); err != nil {
		t.Fatal(err)
	}
	in, err := r.NewInstancer(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	if !hasExactly(in, good) {
		t.Fatalf("set %v; want only %s (no junk, no lease-less record)", in.State(), good.ID)
	}
	if n := strings.Count(logs.String(), "skipped records that are not usable instances"); n != 1 {
		t.Fatalf("%d summary lines for one listing; want 1:\n%.2000s", n, logs)
	}
	if strings.Count(logs.String(), "\n") > 20 {
		t.Fatalf("%d log lines for one listing of %d junk keys", strings.Count(logs.String(), "\n"), junk)
	}
	if !contains(logs.String(), fmt.Sprintf("skipped=%d", junk+1)) || obs.get() != junk+1 {
		t.Fatalf("skipped count: metric %d, log %q; want %d", obs.get(), logs, junk+1)
	}
}

// A record without a lease at an instance's key is taken over by the
// instance's registrar (it is no live holder: it would never expire),
// and again if one is written over its record later.
func TestRegistrar_TakesOverALeaselessRecordAtItsKey(t *testing.T) {
	prefix := testPrefix(t)
	reg, logs := newTestRegistry(t, shared, prefix)
	raw := rawClient(t, shared)
	ctx := testCtx(t)
	inst := testInstance(8080)
	elsewhere := inst
	elsewhere.Endpoints = []string{"http://10.9.9.9:8080"}
	key := reg.key(inst)
	if _, err := raw.Put(ctx, key, mustRecord(t, elsewhere)); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatalf("Register over a lease-less record: %v", err)
	}
	check := func(when string) {
		t.Helper()
		waitFor(t, 10*time.Second, "our record under our lease "+when, func() bool {
			resp, err := raw.Get(ctx, key)
			if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].Lease == 0 {
				return false
			}
			got, err := registry.DecodeRecord(resp.Kvs[0].Value)
			return err == nil && got.HostPort() == inst.HostPort()
		})
	}
	check("after Register")
	if !contains(logs.String(), "replacing a record without a lease", "10.9.9.9") {
		t.Fatalf("the takeover was not logged naming the old address:\n%s", logs)
	}
	for _, addr := range []string{"10.9.9.9", "127.0.0.1"} { // another address, and ours
		over := inst
		over.Endpoints = []string{"http://" + addr + ":8080"}
		if _, err := raw.Put(ctx, key, mustRecord(t, over)); err != nil {
			t.Fatal(err)
		}
		check("after a lease-less overwrite with " + addr)
	}
	// The record is back a moment before the registrar reports it (a
	// loaded machine may run the test first): wait for the status too.
	waitFor(t, 10*time.Second, "status registered", func() bool {
		return reg.Status().State == registry.StateRegistered
	})
}
