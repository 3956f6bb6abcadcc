package faults

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul/consuldev"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zktest"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zookeeperdev"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/internal/syncbuf"
	"github.com/warren-mesh/warren/services/user"
)

// Settings every scenario shares: short enough to keep the suite fast,
// long enough that a loaded 2-core machine does not trip them by itself.
const (
	ttl        = 3 * time.Second // etcd lease / Consul check TTL of every service
	grace      = time.Second     // each service's --grace
	rate       = 200             // calls per second of every load
	perAttempt = time.Second     // the load client's per-attempt timeout
)

// perAttempt was 200 ms: on a loaded 2-core machine under -race a healthy
// instance sometimes took longer, every call in flight timed out at once,
// and the retry budget ran dry (25 of 3938 calls failed in the etcd-down
// scenario before etcd was even stopped). Not longer than 1 s either: P2C
// keeps sending to a hung instance until its attempts time out (its
// latency estimate decays while they are outstanding), so the pile-up that
// then needs retrying grows with the timeout; at 2 s it was ~50 attempts,
// beyond the retry budget's burst of 10 (13 of 1600 calls failed).

var (
	root   string // module root
	binDir string // service binaries, built once by TestMain
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if root, err = moduleRoot(); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "warren-faults-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if err := devmesh.Build(ctx, root, binDir); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("faults: built the services in %s\n", time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

func moduleRoot() (string, error) { return devmesh.FindRoot(".") }

// mesh is a running devmesh with its output.
type mesh struct {
	*devmesh.Mesh
	out *syncbuf.Buffer
}

// Etcd is the mesh's embedded etcd (the test fails on a Consul mesh).
func (m *mesh) Etcd() *etcddev.Server { return m.Server().(*etcddev.Server) }

// Consul is the mesh's Consul agent (the test fails on an etcd mesh).
func (m *mesh) Consul() *consuldev.Server { return m.Server().(*consuldev.Server) }

// ZooKeeper is the mesh's ZooKeeper (the test fails on another mesh).
func (m *mesh) ZooKeeper() *zookeeperdev.Server { return m.Server().(*zookeeperdev.Server) }

// startMesh starts the registry and two instances of each service (user
// only, one service when one is named, every service when several are:
// callers and all they may call), stopped when the test ends.
func startMesh(t *testing.T, reg string, services ...string) *mesh {
	t.Helper()
	return startMeshTTL(t, reg, ttl, services...)
}

// startMeshTTL is startMesh with every service's TTL (ZooKeeper session
// timeout) given.
func startMeshTTL(t *testing.T, reg string, ttl time.Duration, services ...string) *mesh {
	t.Helper()
	if reg == "consul" {
		if _, err := consultest.Binary(); err != nil {
			if consultest.Skipped() {
				t.Skipf("%v (WARREN_SKIP_CONSUL=1)", err)
			}
			t.Fatalf("%v", err)
		}
	}
	if reg == "zookeeper" {
		if err := zktest.Installed(); err != nil {
			t.Fatalf("%v", err)
		}
	}
	switch len(services) {
	case 0:
		services = []string{"user"}
	case 1:
	default:
		// A mesh of callers and callees: every service, so whatever a
		// caller depends on (a service svcgen added) runs too.
		services = nil
	}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root: root, Registry: reg, StateDir: t.TempDir(), BinDir: binDir, Out: out,
		Backends: []devmesh.Backend{etcddev.Backend(), consuldev.Backend(), zookeeperdev.Backend()},
		TTL:      ttl, Grace: grace, Services: services,
	})
	if err != nil {
		t.Fatalf("start mesh: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Errorf("stop mesh: %v", err)
		}
		if t.Failed() {
			t.Logf("mesh output (access log left out):\n%s", tail(withoutAccessLog(out.String()), 20000))
		}
	})
	return &mesh{Mesh: m, out: out}
}

func withoutAccessLog(s string) string {
	var keep []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.Contains(line, "msg=access") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// userLoad is the typed user client the load goes through (per-attempt
// timeout perAttempt, otherwise the defaults: P2C, 3 attempts, budget,
// outlier ejection), the ID of a user every Get reads, and the count of
// every HTTP attempt the client made.
type userLoad struct {
	c   *user.Client
	id  string
	att *attempts
}

func newUserLoad(t *testing.T, d registry.Discovery, opts ...client.Option) *userLoad {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	att := newAttempts()
	opts = append([]client.Option{client.WithRetry(retry.WithPerAttemptTimeout(perAttempt)), client.WithRoundTripper(att.wrap), client.WithObserver(att)}, opts...)
	c, err := user.NewClient(ctx, d, opts...)
	if err != nil {
		t.Fatalf("user client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	u, err := c.Create(ctx, user.CreateRequest{Name: "Grace Hopper", Email: fmt.Sprintf("grace-%d@example.com", time.Now().UnixNano())})
	if err != nil {
		t.Fatalf("create the user the load reads: %v", err)
	}
	return &userLoad{c: c, id: u.ID, att: att}
}

// get is the load's call: GET /users/{id}, idempotent, so the client may
// retry it on any instance. (A POST in flight to an instance that crashes
// is deliberately not retried — it may have been applied — so the
// zero-error criteria are stated for GETs.)
func (l *userLoad) get(ctx context.Context) error {
	_, err := l.c.Get(ctx, user.GetRequest{ID: l.id})
	return err
}

// start runs the standard load (rate calls/s) for at most d.
func (l *userLoad) start(d time.Duration) *Run {
	return Load{Rate: rate, Duration: d}.Start(context.Background(), l.get)
}

// checkNoErrors fails the test if any call of res failed, or if fewer
// than half the calls a load at rate would send in atLeast were sent: zero
// errors out of too few calls proves nothing.
func checkNoErrors(t *testing.T, what string, res Result, atLeast time.Duration) {
	t.Helper()
	if min := int(rate * atLeast / time.Second / 2); res.Total() < min {
		t.Errorf("%s: only %d calls sent; want ≥ %d (half of %s at %d/s) for the zero-error criterion to mean something", what, res.Total(), min, atLeast, rate)
	}
	if n := res.Errors(); n > 0 {
		t.Errorf("%s: %d of %d calls failed; want 0. First: %s", what, n, res.Total(), strings.Join(res.FirstErrors(5), "; "))
	}
}

// setWatch follows one service's instance set through an instancer and
// keeps every set it saw, with the time, so a test can ask when something
// first became true after a moment.
type setWatch struct {
	ins  sd.Instancer
	ch   chan sd.Event
	done chan struct{}

	mu      sync.Mutex
	hist    []seen
	changed chan struct{}
}

type seen struct {
	at  time.Time
	ids map[string]registry.Instance
	err error
}

func watchSet(t *testing.T, d registry.Discovery, service string) *setWatch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ins, err := d.Instancer(ctx, service)
	if err != nil {
		t.Fatalf("instancer %s: %v", service, err)
	}
	return followSet(t, ins)
}

func followSet(t *testing.T, ins sd.Instancer) *setWatch {
	w := &setWatch{ins: ins, ch: make(chan sd.Event), done: make(chan struct{}), changed: make(chan struct{})}
	go func() { // owned by the setWatch: ends when ch closes in cleanup
		defer close(w.done)
		for ev := range w.ch {
			s := seen{at: time.Now(), ids: map[string]registry.Instance{}, err: ev.Err}
			for _, str := range ev.Instances {
				if ri, err := registry.ParseInstance(str); err == nil {
					s.ids[ri.ID] = ri
				}
			}
			w.mu.Lock()
			w.hist = append(w.hist, s)
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	ins.Register(w.ch)
	t.Cleanup(func() {
		go func() { ins.Deregister(w.ch); close(w.ch) }()
		<-w.done
		ins.Stop()
	})
	return w
}

// firstSince returns the first moment at or after since at which ok held
// for the set.
func (w *setWatch) firstSince(since time.Time, ok func(map[string]registry.Instance) bool) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The set at since is the last one seen at or before it.
	from := 0
	for i, s := range w.hist {
		if s.at.After(since) {
			break
		}
		from = i
	}
	for _, s := range w.hist[from:] {
		if ok(s.ids) {
			return maxTime(s.at, since), true
		}
	}
	return time.Time{}, false
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// await waits until ok holds for the set at or after since, and returns
// when it first did.
func (w *setWatch) await(since time.Time, timeout time.Duration, ok func(map[string]registry.Instance) bool) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		changed := w.changed
		w.mu.Unlock()
		if at, found := w.firstSince(since, ok); found {
			return at, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return time.Time{}, fmt.Errorf("not within %s; last set %v", timeout, w.last())
		}
	}
}

// current is the latest set.
func (w *setWatch) current() map[string]registry.Instance {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.hist) == 0 {
		return nil
	}
	return w.hist[len(w.hist)-1].ids
}

func (w *setWatch) last() []string {
	var ids []string
	for id, ri := range w.current() {
		ids = append(ids, id+"@"+ri.HostPort())
	}
	return ids
}

func has(ids ...string) func(map[string]registry.Instance) bool {
	return func(set map[string]registry.Instance) bool {
		for _, id := range ids {
			if _, ok := set[id]; !ok {
				return false
			}
		}
		return true
	}
}

func lacks(id string) func(map[string]registry.Instance) bool {
	return func(set map[string]registry.Instance) bool {
		_, ok := set[id]
		return !ok
	}
}

// exactly holds when the set is ids and nothing else.
func exactly(ids ...string) func(map[string]registry.Instance) bool {
	return func(set map[string]registry.Instance) bool {
		return len(set) == len(ids) && has(ids...)(set)
	}
}

// readyz returns the instance's /readyz status code (0 if unreachable).
func readyz(baseURL string) int {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(baseURL + "/readyz")
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// testLogger sends go-kit log lines to a buffer the test can search.
func testLogger(buf *syncbuf.Buffer) log.Logger { return log.NewLogfmtLogger(log.NewSyncWriter(buf)) }
