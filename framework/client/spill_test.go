package client

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/freeport"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// toggleServer answers GETs with its name, or hangs (reads the request
// and answers nothing until the caller gives up) while hung is set: a
// SIGSTOPped process and its SIGCONT.
type toggleServer struct {
	srv  *httptest.Server
	inst registry.Instance
	hung atomic.Bool
	hits atomic.Int64
}

func startToggle(t *testing.T, name string, hung bool) *toggleServer {
	t.Helper()
	ts := &toggleServer{}
	ts.hung.Store(hung)
	stop := make(chan struct{})
	ts.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ts.hung.Load() {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return
		}
		ts.hits.Add(1)
		_, _ = w.Write([]byte(`"` + name + `"`))
	}))
	t.Cleanup(func() {
		close(stop)
		ts.srv.Close()
	})
	port := ts.srv.Listener.Addr().(*net.TCPAddr).Port
	ts.inst = spillInstance(port)
	return ts
}

func spillInstance(port int) registry.Instance {
	return registry.Instance{ID: registry.DefaultID("user", "127.0.0.1", port), Name: "user",
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

// regionInstancer registers insts in a memory registry of its own (one
// region) and returns its instancer of user.
func regionInstancer(t *testing.T, insts ...registry.Instance) sd.Instancer {
	t.Helper()
	src, err := newRegistry(t, insts...).Instancer(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// callUser makes one bounded call and says who answered.
func callUser(c *Client) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), callDeadline)
	defer cancel()
	return Call[struct{}, string](ctx, c, "GET", "/who", struct{}{})
}

// Every local instance is listed but dead — one refuses connections (a
// crash), one hangs (SIGSTOP) — and the next region's instance is alive.
// The registry keeps listing the local ones (their records have not
// expired), so failover alone would fail every call; the client sees
// them all ejected or failing and has the Failover spill, after which
// calls succeed. When the hung one answers again, the spill ends and the
// traffic returns to it, without spilling again.
func TestClient_SpillsToTheNextRegionWhenEveryLocalInstanceFails(t *testing.T) {
	ports, err := freeport.Pick(1, false)
	if err != nil {
		t.Fatal(err)
	}
	refused := spillInstance(ports[0]) // nothing listens there
	hung := startToggle(t, "a", true)
	remote, remote2 := startToggle(t, "b", false), startToggle(t, "b", false)

	f := registry.NewFailover(regionInstancer(t, refused, hung.inst), regionInstancer(t, remote.inst, remote2.inst))
	defer f.Stop()
	logs := &syncbuf.Buffer{}
	logger := log.NewLogfmtLogger(logs)
	registry.ReportFailover(f, "user", "datacenter", []string{"dca", "dcb"}, logger, registry.NopObserver{})
	c, err := NewFromInstancer(f, "user",
		// A short cooldown, so the revived instance is probed soon (the
		// default, 10 s doubling, would make the test long, not different).
		WithOutlier(outlier.WithCooldown(200*time.Millisecond, time.Second)),
		WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Until the spill: calls fail (every instance is dead), a bounded few.
	failedBefore, callsBefore := 0, 0
	for f.SpillingTo() != 1 {
		if callsBefore == 50 {
			t.Fatalf("no spill after %d calls (%d failed); targets %d; log:\n%s", callsBefore, failedBefore, len(c.Targets()), logs)
		}
		callsBefore++
		if _, err := callUser(c); err != nil {
			failedBefore++
		}
	}
	if failedBefore > 20 {
		t.Errorf("%d of %d calls failed before the spill, want a few (the runs of failures that eject)", failedBefore, callsBefore)
	}
	// Spilled: the local instances stay in the set, beside the remote ones.
	waitTargets(t, c, 4)
	if !c.State().Spilling {
		t.Error("State().Spilling false while spilling")
	}

	failedSpilled := 0
	remoteBefore := (remote.hits.Load() + remote2.hits.Load())
	for range 100 {
		if _, err := callUser(c); err != nil {
			failedSpilled++
			t.Logf("failed while spilling: %v", err)
		}
	}
	t.Logf("before the spill: %d of %d calls failed; spilled: %d of 100 failed, %d served by dcb",
		failedBefore, callsBefore, failedSpilled, (remote.hits.Load()+remote2.hits.Load())-remoteBefore)
	if failedSpilled > 3 {
		t.Errorf("%d of 100 calls failed while spilling, want ≤ 3", failedSpilled)
	}
	if served := (remote.hits.Load() + remote2.hits.Load()) - remoteBefore; served < 90 {
		t.Errorf("dcb served %d of 100 calls while spilling, want ≥ 90", served)
	}

	// The hung instance answers again: once it has answered its probe
	// and a few calls, the spill ends and its calls come home.
	hung.hung.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for f.SpillingTo() != -1 || f.Spilling() || len(c.Targets()) != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the spill did not end after the local instance came back (spilling to %d, targets %d); log:\n%s",
				f.SpillingTo(), len(c.Targets()), logs)
		}
		_, _ = callUser(c)
	}
	failedHome := 0
	localBefore, remoteBefore := hung.hits.Load(), (remote.hits.Load() + remote2.hits.Load())
	for range 100 {
		if _, err := callUser(c); err != nil {
			failedHome++
		}
	}
	t.Logf("back home: %d of 100 failed, %d served by dca, %d by dcb", failedHome,
		hung.hits.Load()-localBefore, (remote.hits.Load()+remote2.hits.Load())-remoteBefore)
	if failedHome > 3 {
		t.Errorf("%d of 100 calls failed after the spill ended, want ≤ 3", failedHome)
	}
	if got := (remote.hits.Load() + remote2.hits.Load()) - remoteBefore; got != 0 {
		t.Errorf("dcb served %d calls after the spill ended, want 0", got)
	}
	if got := hung.hits.Load() - localBefore; got < 97 {
		t.Errorf("the revived local instance served %d of 100 calls, want them all but failures", got)
	}
	if f.SpillingTo() != -1 || c.State().Spilling {
		t.Error("spilling again, with a local instance answering")
	}
	out := logs.String()
	if n := strings.Count(out, "discovery spills to dcb"); n != 1 {
		t.Errorf("%d spills logged, want 1; log:\n%s", n, out)
	}
	for _, want := range []string{
		"every instance of the service is ejected or failing",
		"an instance that was failing answers again",
		`msg="discovery stops spilling: callers use dca alone"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q; log:\n%s", want, out)
		}
	}
	c.Close()
	c.Close()
}

func waitTargets(t *testing.T, c *Client, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); len(c.Targets()) != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d targets, want %d", len(c.Targets()), n)
		}
	}
}

// A Failover of one source has nowhere to spill: calls keep failing on the
// local instances, and the set stays theirs.
func TestClient_NoSpillWithOneSource(t *testing.T) {
	ports, err := freeport.Pick(2, false)
	if err != nil {
		t.Fatal(err)
	}
	f := registry.NewFailover(regionInstancer(t, spillInstance(ports[0]), spillInstance(ports[1])))
	defer f.Stop()
	c, err := NewFromInstancer(f, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	failed := 0
	for range 30 {
		if _, err := callUser(c); err != nil {
			failed++
		}
	}
	if failed != 30 || f.Spilling() || f.SpillingTo() != -1 || len(c.Targets()) != 2 {
		t.Fatalf("failed %d of 30, spilling %v to %d, %d targets; want 30, no spill, the 2 local targets",
			failed, f.Spilling(), f.SpillingTo(), len(c.Targets()))
	}
}

// discoveryFunc is a registry.Discovery.
type discoveryFunc func(ctx context.Context, service string) (sd.Instancer, error)

func (d discoveryFunc) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	return d(ctx, service)
}

// New reaches the Failover discovery makes, also through the snapshot
// wrapper (WithSnapshot), which does not spill itself; a client over an
// instancer that cannot spill has no spill state.
func TestClient_SpillReachesTheFailoverThroughTheSnapshot(t *testing.T) {
	remote := memory.New()
	t.Cleanup(func() { remote.Close() })
	d := discoveryFunc(func(ctx context.Context, service string) (sd.Instancer, error) {
		return registry.OpenFailover(2, func(int) (sd.Instancer, error) { return remote.Instancer(ctx, service) })
	})
	for _, opts := range [][]Option{nil, {WithSnapshot(t.TempDir())}} {
		c, err := New(context.Background(), d, "user", opts...)
		if err != nil {
			t.Fatal(err)
		}
		if c.spill == nil || c.spill.src.Load() == nil {
			t.Errorf("with %d options: the client cannot reach the Failover's Spill", len(opts))
		}
		c.Close()
		c.Close()
	}
	plain, err := NewFromInstancer(sd.FixedInstancer{}, "user")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if plain.spill != nil {
		t.Error("a client over a FixedInstancer has spill state")
	}
}

// A new local instance ends the spill from the Failover's side (a crashed
// instance restarted under a new record, while the old records have not
// expired): the client follows, the calls go to it, and no spill follows
// while it answers.
func TestClient_NewLocalInstanceEndsTheSpill(t *testing.T) {
	ports, err := freeport.Pick(2, false)
	if err != nil {
		t.Fatal(err)
	}
	local := newRegistry(t, spillInstance(ports[0]), spillInstance(ports[1]))
	lsrc, err := local.Instancer(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	remote := startToggle(t, "b", false)
	f := registry.NewFailover(lsrc, regionInstancer(t, remote.inst))
	defer f.Stop()
	logs := &syncbuf.Buffer{}
	c, err := NewFromInstancer(f, "user", WithLogger(log.NewLogfmtLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for n := 0; f.SpillingTo() != 1; n++ {
		if n == 50 {
			t.Fatalf("no spill after %d calls; log:\n%s", n, logs)
		}
		_, _ = callUser(c)
	}
	fresh := startToggle(t, "a", false)
	if err := local.Register(context.Background(), fresh.inst); err != nil {
		t.Fatal(err)
	}
	// The two dead and the new one; dcb's left.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ids := map[string]bool{}
		for _, tg := range c.Targets() {
			ids[tg.ID] = true
		}
		if len(ids) == 3 && ids[fresh.inst.String()] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets %v, want the two dead local ones and the new one", ids)
		}
	}
	if f.Spilling() {
		t.Fatal("the Failover still spills with a new local instance")
	}
	failed := 0
	for range 100 {
		if _, err := callUser(c); err != nil {
			failed++
			t.Logf("failed after the new local instance: %v", err)
		}
	}
	t.Logf("after the new local instance: %d of 100 failed, %d served by it", failed, fresh.hits.Load())
	// The two dead instances are two of three now: the panic threshold
	// (≤ 50 % ejected) keeps one in, and a call's three attempts can
	// alternate between them (seen: 0–2 of 100).
	if failed > 5 || fresh.hits.Load() < 95 {
		t.Errorf("%d of 100 calls failed and %d went to the new local instance; want ≤ 5 and the rest", failed, fresh.hits.Load())
	}
	if c.spill.on.Load() || f.Spilling() || f.SpillingTo() != -1 {
		t.Errorf("spilling after the new instance answered (client %v, Failover %v to %d); log:\n%s",
			c.spill.on.Load(), f.Spilling(), f.SpillingTo(), logs)
	}
	if !strings.Contains(logs.String(), "discovery ended the spill") {
		t.Errorf("the client did not log the Failover's end of the spill; log:\n%s", logs)
	}
}
