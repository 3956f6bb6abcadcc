package faults

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/syncbuf"
	"github.com/warren-mesh/warren/internal/tcpproxy"
	"github.com/warren-mesh/warren/services/user"
)

const userPrefix = "/warren/services/user/"

// rawEtcd is a plain etcd client on the mesh's etcd, playing the operator.
func rawEtcd(t *testing.T, endpoints []string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// registered reports whether every user instance i in idx has its key in
// etcd and says it is registered on /readyz (its registrar's own view).
func registered(cli *clientv3.Client, m *mesh, idx ...int) bool {
	ok, err := registration(cli, m, idx...)
	return ok && err == nil
}

// registration is registered telling "not registered" (a key missing, a
// /readyz that answers 503) from "could not ask" (the read of etcd or the
// probe failed: on a loaded machine, a restarted etcd's first reads can
// take longer than the second they get).
func registration(cli *clientv3.Client, m *mesh, idx ...int) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, userPrefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return false, err
	}
	keys := map[string]bool{}
	for _, kv := range resp.Kvs {
		keys[string(kv.Key)] = true
	}
	for _, i := range idx {
		in := m.Instance("user", i)
		if !keys[userPrefix+in.ID()] {
			return false, nil
		}
		switch readyz(in.Registered.Endpoints[0]) {
		case http.StatusOK:
		case 0:
			return false, fmt.Errorf("user-%d's /readyz did not answer", i)
		default:
			return false, nil
		}
	}
	return true, nil
}

// stillRegistered asks registration until it gets an answer (at most
// 10 s): a read that fails is asked again, a "not registered" is final.
func stillRegistered(cli *clientv3.Client, m *mesh, idx ...int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := registration(cli, m, idx...)
		if err == nil || time.Now().After(deadline) {
			return ok
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// awaitRegistered polls registered until it holds and returns when it
// first did.
func awaitRegistered(t *testing.T, cli *clientv3.Client, m *mesh, timeout time.Duration, idx ...int) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if registered(cli, m, idx...) {
			return time.Now(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("user instances %v not registered within %s", idx, timeout)
}

// Scenario 5. etcd restarts (down about a second, then up on the same
// data) under load: every service is registered again — its key in etcd
// and /readyz saying so — within TTL + 2 s of etcd serving, is still
// registered one TTL later (no record left on a lease nobody renews), and
// the client, serving from its cached set meanwhile, sees no error.
func TestEtcdRestart_ReRegisteredWithinTTLPlus2s_NoClientErrors(t *testing.T) {
	m := startMesh(t, "etcd")
	cli := rawEtcd(t, m.Etcd().Endpoints())
	l := newUserLoad(t, m.Discovery())
	run := l.start(60 * time.Second)
	time.Sleep(time.Second)

	if err := m.Etcd().Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := m.Etcd().Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	at, err := awaitRegistered(t, cli, m, ttl+10*time.Second, 1, 2)
	if err == nil {
		time.Sleep(ttl + time.Second)
		if !stillRegistered(cli, m, 1, 2) {
			err = fmt.Errorf("registered at first, gone %s later", ttl+time.Second)
		}
	}
	run.Stop()
	res := run.Wait()
	if err != nil {
		t.Fatal(err)
	}
	took := at.Sub(back)
	t.Logf("etcd restart: every instance registered %.2fs after etcd served again (TTL %s); load %s", took.Seconds(), ttl, res)
	checkNoErrors(t, "etcd restart", res, 6*time.Second)
	if took > ttl+2*time.Second {
		t.Errorf("re-registered after %s; want ≤ TTL + 2s = %s", took.Round(time.Millisecond), ttl+2*time.Second)
	}
}

// Scenario 6. etcd is unreachable for 3 × TTL under load: every lease
// keepalive gives up, yet calls keep succeeding on the clients' cached
// sets (no error), and once etcd is back every service is registered again
// within reregisterBound and stays so.
func TestEtcdDownFor3TTL_CallsKeepSucceeding_ReRegisteredAfter(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: etcd stays down for 3 × TTL")
	}
	m := startMesh(t, "etcd")
	cli := rawEtcd(t, m.Etcd().Endpoints())
	l := newUserLoad(t, m.Discovery())
	run := l.start(60 * time.Second)
	time.Sleep(time.Second)

	down := time.Now()
	if err := m.Etcd().Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * ttl)
	// Meanwhile the instances know their registration is lost.
	notReady := 0
	for _, i := range []int{1, 2} {
		if readyz(m.Instance("user", i).Registered.Endpoints[0]) != http.StatusOK {
			notReady++
		}
	}
	if err := m.Etcd().Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	at, err := awaitRegistered(t, cli, m, 30*time.Second, 1, 2)
	if err == nil {
		time.Sleep(ttl + time.Second)
		if !stillRegistered(cli, m, 1, 2) {
			err = fmt.Errorf("registered at first, gone %s later", ttl+time.Second)
		}
	}
	run.Stop()
	res := run.Wait()
	if err != nil {
		t.Fatal(err)
	}
	downErrs, downTotal := res.ErrorsBetween(down.Sub(run.Started()), back.Sub(run.Started()))
	took := at.Sub(back)
	t.Logf("etcd down %s: %d/%d calls failed while down, %d/2 instances reported not registered; re-registered %.2fs after etcd was back; load %s",
		back.Sub(down).Round(100*time.Millisecond), downErrs, downTotal, notReady, took.Seconds(), res)
	checkNoErrors(t, "etcd down for 3 × TTL", res, 10*time.Second)
	if notReady != 2 {
		t.Errorf("%d of 2 instances noticed the lost registration on /readyz; want 2", notReady)
	}
	if took > reregisterBound {
		t.Errorf("re-registered after %s; want ≤ %s", took.Round(time.Millisecond), reregisterBound)
	}
}

// reregisterBound is how soon a registration lost in an outage longer
// than the TTL is back once etcd is: the registrar's backoff and gRPC's
// reconnect backoff are both capped at 5 s (etcd.WithBackoff's default),
// and one of each may be under way when etcd returns.
const reregisterBound = 2*5*time.Second + time.Second

// Scenario 7. An operator revokes a service's lease (etcdctl lease
// revoke): the key goes with it, and the registrar notices through its
// watch on its own key and writes the record again within 2 s.
func TestLeaseRevokedByOperator_ReRegisteredWithin2s(t *testing.T) {
	m := startMesh(t, "etcd")
	cli := rawEtcd(t, m.Etcd().Endpoints())
	l := newUserLoad(t, m.Discovery())
	run := l.start(4 * time.Second)
	time.Sleep(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := userPrefix + m.Instance("user", 1).ID()
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("get %s: %v %v", key, err, resp)
	}
	oldLease := resp.Kvs[0].Lease
	wch := cli.Watch(ctx, key, clientv3.WithRev(resp.Header.Revision+1))
	revoked := time.Now()
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(oldLease)); err != nil {
		t.Fatal(err)
	}
	var back time.Time
	var newLease int64
	giveUp := time.NewTimer(10 * time.Second)
	defer giveUp.Stop()
wait:
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				t.Errorf("watch on %s ended: %v", key, wr.Err()) // a closed channel would spin forever
				break wait
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypePut {
					back, newLease = time.Now(), ev.Kv.Lease
					break wait
				}
			}
		case <-giveUp.C:
			break wait
		}
	}
	res := run.Wait()
	if back.IsZero() {
		t.Fatalf("%s not written again within 10s of revoking its lease", key)
	}
	took := back.Sub(revoked)
	t.Logf("lease revoked: %s re-registered after %s under a new lease (%x → %x); load %s", key, took.Round(100*time.Microsecond), oldLease, newLease, res)
	checkNoErrors(t, "lease revoked", res, 4*time.Second)
	if newLease == oldLease {
		t.Errorf("re-registered under the revoked lease %x", oldLease)
	}
	if took > 2*time.Second {
		t.Errorf("re-registered after %s; want ≤ 2s", took)
	}
}

// Scenario 8. A client is cut off from etcd (a partition between it and
// etcd only) while one instance dies and its record expires, another
// starts, and etcd compacts its history past everything the client saw.
// When the partition heals the client's set is exactly the live instances:
// no change is missed although the revisions it would resume from are gone.
// (The watch-level ErrCompacted path is also unit-tested in
// framework/registry/etcd.)
func TestWatchCompaction_NoMissedChange(t *testing.T) {
	m := startMesh(t, "etcd")
	cli := rawEtcd(t, m.Etcd().Endpoints())
	proxy, err := tcpproxy.New(m.Etcd().Endpoints()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(proxy.Addr()), etcd.WithLogger(testLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	w := watchSet(t, reg, "user")
	if _, err := w.await(time.Now(), 10*time.Second, exactly("user-1", "user-2")); err != nil {
		t.Fatal(err)
	}

	proxy.Block()
	if err := m.Kill(m.Instance("user", 2)); err != nil {
		t.Fatal(err)
	}
	third, err := m.StartInstance("user", devmesh.InstanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx, third); err != nil {
		t.Fatal(err)
	}
	// Wait for user-2's lease to expire, so its DELETE is in the history.
	var rev int64
	for {
		resp, err := cli.Get(ctx, userPrefix+"user-2")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			rev = resp.Header.Revision
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if set := w.current(); !exactly("user-1", "user-2")(set) {
		t.Fatalf("the partitioned client saw changes through the partition: %v", w.last())
	}
	healed := time.Now()
	proxy.Unblock()
	at, err := w.await(healed, 20*time.Second, exactly("user-1", third.ID()))
	if err != nil {
		t.Fatalf("after the partition healed: %v", err)
	}
	reason := "?"
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "re-listing") {
			reason = line
		}
	}
	t.Logf("compaction at rev %d during a partition: the client's set was exactly {user-1, %s} %.2fs after it healed; last re-list: %s",
		rev, third.ID(), at.Sub(healed).Seconds(), reason)
}

// Scenario 9. A client that starts while etcd is down works once etcd is
// up — and, with the on-disk snapshot (client.WithSnapshot), at once from
// the last known set, before etcd is back.
func TestRegistryDownAtClientStart_SnapshotServesAtOnce_LiveOnceUp(t *testing.T) {
	m := startMesh(t, "etcd")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snapDir := t.TempDir()
	// An earlier run of the caller, while etcd was up, left its snapshot.
	warm := newUserLoad(t, m.Discovery(), client.WithSnapshot(snapDir))
	if err := warm.get(ctx); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(snapDir, user.ServiceName+".json"))
	warm.c.Close()

	if err := m.Etcd().Stop(); err != nil {
		t.Fatal(err)
	}
	// Fresh registries: nothing cached in this process.
	fresh := func() registry.Registry {
		r, err := etcd.New(ctx, etcd.WithEndpoints(m.Etcd().Endpoints()...))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	opts := client.WithRetry(retry.WithPerAttemptTimeout(perAttempt))

	start := time.Now()
	snapped, err := user.NewClient(ctx, fresh(), opts, client.WithSnapshot(snapDir))
	if err != nil {
		t.Fatalf("client with snapshot, etcd down: %v", err)
	}
	defer snapped.Close()
	if _, err := snapped.Get(ctx, user.GetRequest{ID: warm.id}); err != nil {
		t.Fatalf("client with snapshot, etcd down: first call: %v", err)
	}
	snapFirst := time.Since(start)

	start = time.Now()
	plain, err := user.NewClient(ctx, fresh(), opts)
	if err != nil {
		t.Fatalf("client without snapshot, etcd down: %v", err)
	}
	defer plain.Close()
	plainNew := time.Since(start)
	get := func() error {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := plain.Get(cctx, user.GetRequest{ID: warm.id})
		return err
	}
	downErr := get()
	if downErr == nil {
		t.Fatal("client without snapshot: a call succeeded while etcd was down and nothing was known")
	}

	if err := m.Etcd().Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	var firstOK time.Duration
	for firstOK == 0 && time.Since(back) < 30*time.Second {
		if get() == nil {
			firstOK = time.Since(back)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if firstOK == 0 {
		t.Fatal("client without snapshot: no call succeeded within 30s of etcd serving")
	}
	res := Load{Rate: rate, Duration: 2 * time.Second}.Start(ctx, func(ctx context.Context) error {
		_, err := plain.Get(ctx, user.GetRequest{ID: warm.id})
		return err
	}).Wait()
	t.Logf("etcd down at client start: with snapshot first call OK %s after New; without, New took %s, calls failed (%v) until %.2fs after etcd served; then %s",
		snapFirst.Round(100*time.Microsecond), plainNew.Round(time.Millisecond), shortErr(downErr), firstOK.Seconds(), res)
	checkNoErrors(t, "client started while etcd was down, after etcd came up", res, 2*time.Second)
	if snapFirst > time.Second {
		t.Errorf("with snapshot the first call took %s; want at once (≤ 1s)", snapFirst)
	}
	if firstOK > reregisterBound {
		t.Errorf("without snapshot calls succeeded %s after etcd came up; want ≤ %s", firstOK, reregisterBound)
	}
}

func shortErr(err error) string {
	s := err.Error()
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for range 100 {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not written", path)
}

// Scenario 10. Garbage in the registry — a value that is not JSON, a
// record of an unknown version, a record whose ID does not match its key
// (a duplicate of user-1 under another key) — is skipped and logged by
// every reader; and a second process started with user-1's ID on another
// address is refused (it exits naming both addresses) while the first keeps
// its record. No client error, no process crashes.
func TestGarbageAndDuplicateID_IgnoredLoggedNoCrash(t *testing.T) {
	m := startMesh(t, "etcd", "user", "order")
	cli := rawEtcd(t, m.Etcd().Endpoints())
	logs := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(m.Etcd().Endpoints()...), etcd.WithLogger(testLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	w := watchSet(t, reg, "user")
	l := newUserLoad(t, reg)
	run := l.start(30 * time.Second)
	time.Sleep(time.Second)

	first := m.Instance("user", 1).Registered
	dupRecord, err := registry.EncodeRecord(first)
	if err != nil {
		t.Fatal(err)
	}
	garbage := map[string]string{
		userPrefix + "garbage": "not json {",
		userPrefix + "future":  `{"v":99,"instance":{"id":"future","name":"user","address":"127.0.0.1","port":1}}`,
		userPrefix + "user-1b": string(dupRecord), // says it is user-1
	}
	for k, v := range garbage {
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	dup, err := m.StartInstance("user", devmesh.InstanceOptions{Env: []string{"WARREN_ID=" + first.ID}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-dup.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the duplicate of user-1 is still running after 30s")
	}
	time.Sleep(time.Second)
	run.Stop()
	res := run.Wait()

	t.Logf("garbage and a duplicate ID under load: %s; duplicate exited: %v", res, dup.Err())
	checkNoErrors(t, "garbage in the registry", res, 2*time.Second)
	if dup.Err() == nil {
		t.Error("the duplicate of user-1 exited 0; want a refusal")
	}
	// The launcher says so when it happens (make up's user sees it at once).
	if !strings.Contains(m.out.String(), first.ID+" exited unexpectedly") {
		t.Errorf("the launcher did not report the duplicate's exit as it happened")
	}
	dupLines := linesWith(m.out.String(), fmt.Sprintf("user-%d |", dup.Index))
	if !strings.Contains(dupLines, "conflict") || !strings.Contains(dupLines, first.HostPort()) {
		t.Errorf("the duplicate's output does not name the conflict and the holder %s:\n%s", first.HostPort(), dupLines)
	}
	if set := w.current(); !exactly("user-1", "user-2")(set) || set["user-1"].HostPort() != first.HostPort() {
		t.Errorf("client's set %v; want exactly user-1 (at %s) and user-2", w.last(), first.HostPort())
	}
	for k := range garbage {
		if !strings.Contains(logs.String(), k) {
			t.Errorf("%s was not logged as skipped:\n%s", k, logs)
		}
	}
	for _, in := range m.Instances() {
		if in == dup {
			continue
		}
		select {
		case <-in.Exited():
			t.Errorf("%s exited: %v", in.ID(), in.Err())
		default:
		}
	}
	// order reads user through discovery: it still finds users.
	body := fmt.Sprintf(`{"user_id":%q,"items":[{"sku":"book","quantity":1,"price_cents":100}]}`, l.id)
	resp, err := http.Post(m.Instance("order", 1).Registered.Endpoints[0]+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("order after garbage: %s", resp.Status)
	}
}

func linesWith(s, marker string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, marker) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// Scenario 12. The thundering herd: 200 registrars (in this process, each
// with its own etcd client, as 200 service processes would have) lose
// their leases in an etcd outage longer than the TTL. Once etcd is back
// every one of them re-registers — all succeed — and the jittered backoff
// spreads their writes over at least 1 s instead of one instant.
func TestThunderingHerd_200ReRegistrationsSpreadOver1s_AllSucceed(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 200 registrars and an etcd outage")
	}
	const n = 200
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	regs := make([]*etcd.Registry, n)
	defer func() {
		var wg sync.WaitGroup
		for _, r := range regs {
			if r != nil {
				wg.Go(func() { r.Close() })
			}
		}
		wg.Wait()
	}()
	for i := range regs {
		r, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(ttl))
		if err != nil {
			t.Fatal(err)
		}
		regs[i] = r
		inst := registry.Instance{ID: fmt.Sprintf("herd-%03d", i), Name: "herd", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 20000+i)}}
		if err := r.Register(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * ttl) // every client-side keepalive gives up after one TTL
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	var at []time.Duration
	// Generous: the embedded etcd runs in this -race test process, and
	// beside other test packages on 2 cores 200 clients took more than 45 s
	// (11 of 200 back by then); alone they take about 16 s. The criterion
	// is that all come back, spread out, not how fast.
	const allBack = 150 * time.Second
	// Done when every registrar says it is registered again and etcd holds
	// every key at the same time. Both are checked until then: a registrar
	// learns of a lost record a moment after etcd does (a lease whose
	// keepalives a starved machine delayed past the TTL expires, and its
	// registrar re-registers), so one look at each could catch that moment
	// (seen once: 199 keys with all 200 saying registered, two loaded test
	// runs at once). A registrar that said registered over a missing key
	// for good still fails here, after allBack.
	const herdKeys = "/warren/services/herd/"
	cli := rawEtcd(t, srv.Endpoints())
	var keys map[string]bool
	deadline := time.Now().Add(allBack)
	for time.Now().Before(deadline) {
		at = at[:0]
		for _, r := range regs {
			if st := r.Status(); st.State == registry.StateRegistered && st.Reregistrations > 0 {
				at = append(at, st.Since.Sub(back))
			}
		}
		if len(at) == n {
			rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
			resp, err := cli.Get(rctx, herdKeys, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			rcancel()
			if err == nil {
				keys = map[string]bool{}
				for _, kv := range resp.Kvs {
					keys[strings.TrimPrefix(string(kv.Key), herdKeys)] = true
				}
				if len(keys) == n {
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(at) != n {
		t.Fatalf("%d of %d registrars re-registered within %s of etcd coming back", len(at), n, allBack)
	}
	if len(keys) != n {
		var missing []string
		for i := range regs {
			if id := fmt.Sprintf("herd-%03d", i); !keys[id] {
				missing = append(missing, fmt.Sprintf("%s (%+v)", id, regs[i].Status()))
			}
		}
		t.Fatalf("%d keys in etcd with all %d registrars saying registered, for %s; missing: %s", len(keys), n, allBack, strings.Join(missing, ", "))
	}
	slices.Sort(at)
	spread := at[n-1] - at[0]
	t.Logf("thundering herd: %d registrars re-registered between %.2fs and %.2fs after etcd was back (spread %.2fs, p50 %.2fs); %d keys",
		n, at[0].Seconds(), at[n-1].Seconds(), spread.Seconds(), at[n/2].Seconds(), len(keys))
	if spread < time.Second {
		t.Errorf("re-registrations spread over %s; want ≥ 1s (jitter)", spread)
	}
}
