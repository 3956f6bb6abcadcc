package etcd

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// shared is the package's etcd; tests that stop etcd start their own.
var shared *embedetcd.Server

func TestMain(m *testing.M) {
	s, err := embedetcd.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

const testTTL = 2 * time.Second

var prefixSeq atomic.Int64

// testPrefix gives each test its own key space on the shared etcd.
func testPrefix(t *testing.T) string {
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("t%d-%s", prefixSeq.Add(1), name)
}

// newTestRegistry returns a Registry on srv with short timings; it is
// closed when the test ends and its log is shown if the test failed.
func newTestRegistry(t *testing.T, srv *embedetcd.Server, prefix string, opts ...Option) (*Registry, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	base := []Option{
		WithEndpoints(srv.Endpoints()...),
		WithPrefix(prefix),
		WithTTL(testTTL),
		WithBackoff(50*time.Millisecond, 500*time.Millisecond),
		WithDialTimeout(2 * time.Second),
		WithRequestTimeout(2 * time.Second),
		WithLogger(log.NewLogfmtLogger(logs)),
	}
	r, err := New(context.Background(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Close()
		if t.Failed() {
			t.Logf("registry log:\n%s", logs)
		}
	})
	return r, logs
}

func rawClient(t *testing.T, srv *embedetcd.Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < timeout {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
	return 0
}

func testInstance(port int) registry.Instance {
	return registry.Instance{
		ID:        registry.DefaultID("user", "127.0.0.1", port),
		Name:      "user",
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)},
	}
}

// hasExactly reports whether the instancer's current set is want (by ID)
// and carries no error.
func hasExactly(in *Instancer, want ...registry.Instance) bool {
	ev := in.State()
	if ev.Err != nil || len(ev.Instances) != len(want) {
		return false
	}
	ids := map[string]bool{}
	for _, s := range ev.Instances {
		inst, err := registry.ParseInstance(s)
		if err != nil {
			return false
		}
		ids[inst.ID] = true
	}
	for _, w := range want {
		if !ids[w.ID] {
			return false
		}
	}
	return true
}

// leaseOf returns the lease holding key, or -1 if the key does not exist.
func leaseOf(t *testing.T, cli *clientv3.Client, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return -1
	}
	return resp.Kvs[0].Lease
}

func withHookBeforeWatch(f func()) Option {
	return func(c *config) { c.testHookBeforeWatch = f }
}

func contains(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// leaseFor returns the current lease of the registration of key, or -1 if
// there is none.
func (r *Registry) leaseFor(key string) clientv3.LeaseID {
	r.mu.Lock()
	g, _, _ := r.regs.Get(key)
	r.mu.Unlock()
	if g == nil {
		return -1
	}
	return g.currentLease()
}

// takeOver writes inst's record at key with another endpoint, under a
// 60 s lease of its own, as another process that took the ID over would;
// the lease is revoked when the test ends. It returns that lease.
func takeOver(t *testing.T, raw *clientv3.Client, key string, inst registry.Instance) clientv3.LeaseID {
	t.Helper()
	other := inst
	other.Endpoints = []string{"http://127.0.0.1:9090"}
	rec, err := registry.EncodeRecord(other)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	grant, err := raw.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Revoke(context.Background(), grant.ID) })
	if _, err := raw.Put(ctx, key, string(rec), clientv3.WithLease(grant.ID)); err != nil {
		t.Fatal(err)
	}
	return grant.ID
}

// registerOnShared registers testInstance(8080) through reg, a Registry on
// the shared etcd, and returns the instance, a raw client and the key of
// its record: the start of the tests that then look at that key directly.
func registerOnShared(t *testing.T, ctx context.Context, reg *Registry) (registry.Instance, *clientv3.Client, string) {
	t.Helper()
	inst := testInstance(8080)
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	return inst, rawClient(t, shared), reg.key(inst)
}
