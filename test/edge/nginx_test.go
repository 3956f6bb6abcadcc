// Package edge runs the real Debian nginx in front of the demo mesh (real
// service processes on an embedded etcd, framework/devmesh) with
// framework/edge/nginx following discovery, and proves that nginx's
// clients see no error while instances register, deregister, are killed
// and are restarted one by one under load (docs/edge.md).
package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/syncbuf"
	"github.com/warren-mesh/warren/test/faults"
)

func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := devmesh.FindRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// applied records every set the syncer had nginx load, and when.
type applied struct {
	mu   sync.Mutex
	sets []appliedSet
}

type appliedSet struct {
	at  time.Time
	ids []string
}

func (a *applied) add(snap edge.Snapshot) {
	svc, _ := snap.Service("user")
	var ids []string
	for _, in := range svc.Instances {
		ids = append(ids, in.ID)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sets = append(a.sets, appliedSet{at: time.Now(), ids: ids})
}

// latest is the set nginx was last reloaded with.
func (a *applied) latest() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.sets) == 0 {
		return nil
	}
	return a.sets[len(a.sets)-1].ids
}

// droppedAt is when nginx was first reloaded without id after since.
func (a *applied) droppedAt(id string, since time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.sets {
		if s.at.After(since) && !slices.Contains(s.ids, id) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// waitSet waits (60 s at most) until nginx was reloaded with exactly ids.
func (a *applied) waitSet(t *testing.T, why string, ids ...string) {
	t.Helper()
	slices.Sort(ids)
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := slices.Clone(a.latest())
		slices.Sort(got)
		if slices.Equal(got, ids) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: nginx's upstream is %v after 60 s; want %v", why, got, ids)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ids(insts ...*devmesh.Instance) []string {
	var out []string
	for _, in := range insts {
		out = append(out, in.ID())
	}
	return out
}

// Under 200 requests/s through nginx: a new instance registers, one is
// withdrawn (SIGTERM), one is SIGKILLed, and the rest are restarted one
// by one. nginx's client sees no error at all (nginx retries the next
// upstream on connect errors), every change reaches nginx's upstream,
// and a withdrawn instance leaves the upstream before its process exits.
func TestNginx_FollowsTheMeshUnder200RPSWithNoErrorAtTheClient(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a mesh and nginx")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	out := &syncbuf.Buffer{}
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root:      moduleRoot(t),
		Backends:  []devmesh.Backend{etcddev.Backend()},
		Services:  []string{"user"},
		Instances: 2,
		StateDir:  t.TempDir(),
		Out:       out,
		// Withdrawal must reach nginx within the grace: 5 s is generous
		// for a debounce of 100 ms, nginx -t and a reload, even loaded.
		Grace:        5 * time.Second,
		TTL:          3 * time.Second,
		ReadyTimeout: 3 * time.Minute,
	})
	if err != nil {
		t.Fatalf("mesh: %v\n%s", err, out)
	}
	defer func() {
		if err := m.Stop(); err != nil {
			t.Errorf("mesh stop: %v", err)
		}
		if t.Failed() {
			t.Logf("mesh output:\n%s", out)
		}
	}()

	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if errors.Is(err, nginx.ErrNoNginx) {
		t.Fatalf("%v: `make nginx` installs it", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	syncer, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := edge.NewWatcher(m.Discovery(), []string{"user"}, edge.WithDebounce(100*time.Millisecond), edge.WithRetry(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	rec := &applied{}
	wctx, wcancel := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		watched <- w.Run(wctx, func(ctx context.Context, snap edge.Snapshot) error {
			if err := syncer.Apply(ctx, snap); err != nil {
				return err
			}
			rec.add(snap)
			return nil
		})
	}()
	defer func() {
		wcancel()
		if err := <-watched; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()
	u1, u2 := m.Instance("user", 1), m.Instance("user", 2)
	rec.waitSet(t, "start", ids(u1, u2)...)

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	url := p.URL() + "/user/users?limit=1"
	load := faults.Load{Rate: 200, Duration: 6 * time.Minute, Timeout: 30 * time.Second}.Start(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		}
		return nil
	})
	stopped := false
	defer func() {
		if !stopped {
			load.Stop()
			load.Wait()
		}
	}()
	time.Sleep(2 * time.Second) // traffic on the starting set first

	start := func(why string) *devmesh.Instance {
		t.Helper()
		in, err := m.StartInstance("user", devmesh.InstanceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.WaitReady(ctx, in); err != nil {
			t.Fatalf("%s: %v", why, err)
		}
		return in
	}
	// withdraw sends SIGTERM; the instance must leave the upstream before
	// its process exits.
	withdraw := func(in *devmesh.Instance) {
		t.Helper()
		sent := time.Now()
		if err := m.Signal(in, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-in.Exited():
		case <-ctx.Done():
			t.Fatalf("%s did not exit after SIGTERM", in.ID())
		}
		exited := time.Now()
		if in.Err() != nil {
			t.Fatalf("%s exited uncleanly: %v", in.ID(), in.Err())
		}
		at, ok := rec.droppedAt(in.ID(), sent)
		if !ok || !at.Before(exited) {
			t.Fatalf("%s: nginx was not reloaded without it before it exited (dropped %v, exited %v after SIGTERM)", in.ID(), at.Sub(sent), exited.Sub(sent))
		}
	}
	// Two instances serve at every step: the claim is no error while the
	// set changes, not that one instance absorbs everything (it may shed
	// load with 503, and nginx has no other instance to retry then).

	// Register: a third instance joins the upstream.
	u3 := start("register")
	rec.waitSet(t, "register", ids(u1, u2, u3)...)

	// SIGKILL: u1 dies without withdrawing; nginx retries the next
	// upstream until the lease expires and u1 leaves.
	if err := m.Kill(u1); err != nil {
		t.Fatal(err)
	}
	rec.waitSet(t, "SIGKILL, after the lease expired", ids(u2, u3)...)

	// Deregister: SIGTERM withdraws an instance, which leaves the
	// upstream before it exits.
	u4 := start("a fourth instance")
	rec.waitSet(t, "fourth", ids(u2, u3, u4)...)
	withdraw(u4)
	rec.waitSet(t, "deregister", ids(u2, u3)...)

	// Rolling restart: a new instance per old one, ready before the old
	// one is withdrawn.
	u5 := start("rolling restart")
	rec.waitSet(t, "rolling restart, first new instance", ids(u2, u3, u5)...)
	withdraw(u2)
	u6 := start("rolling restart")
	rec.waitSet(t, "rolling restart, second new instance", ids(u3, u5, u6)...)
	withdraw(u3)
	rec.waitSet(t, "rolling restart done", ids(u5, u6)...)
	time.Sleep(2 * time.Second) // traffic on the final set

	load.Stop()
	res := load.Wait()
	stopped = true
	if res.Total() < 1000 {
		t.Fatalf("only %d requests were sent; the load did not run", res.Total())
	}
	if n := res.Errors(); n > 0 {
		t.Fatalf("%d of %d requests through nginx failed; first: %v", n, res.Total(), res.FirstErrors(5))
	}
	t.Logf("%d requests through nginx in %s, 0 errors; %d reloads", res.Total(), res.Elapsed.Round(time.Millisecond), syncer.Stats().Reloads)
}
