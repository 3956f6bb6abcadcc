package zookeeper

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zktest"
)

// shared is the package's ZooKeeper; tests that stop or cut it start
// their own.
var shared *zktest.Server

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(registrarProcess())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := zktest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start zookeeper:", err)
		os.Exit(1)
	}
	shared = s
	code := m.Run()
	s.Close()
	os.Exit(code)
}

// testSession is the session timeout of the tests' registries: short, so
// expiry cases are quick, and a whole 4 ticks of the test server.
const testSession = 2 * time.Second

// startServer starts a ZooKeeper of the test's own, closed when it ends.
func startServer(t *testing.T, opts ...zktest.Option) *zktest.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := zktest.Start(ctx, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("zookeeper log (tail):\n%s", tailString(s.Log(), 4000))
		}
		s.Close()
	})
	return s
}

func tailString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// logBuf is a go-kit log sink tests can read.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var rootSeq atomic.Int64

// testRoot gives each test its own subtree on a shared server.
func testRoot(t testing.TB) string {
	name := regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-")
	return fmt.Sprintf("/t%d-%s", rootSeq.Add(1), strings.Trim(name, "-"))
}

// newTestRegistry returns a Registry on srv with short timings; it is
// closed when the test ends and its log is shown if the test failed.
func newTestRegistry(t testing.TB, addr, root string, opts ...Option) (*Registry, *logBuf) {
	t.Helper()
	logs := &logBuf{}
	base := []Option{
		WithServers(addr),
		WithRoot(root),
		WithSessionTimeout(testSession),
		WithBackoff(50*time.Millisecond, 500*time.Millisecond),
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

func testInstance(service string, n int) registry.Instance {
	return registry.Instance{
		ID:        fmt.Sprintf("%s-%d", service, n),
		Name:      service,
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 30000+n)},
	}
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// watcher records an instancer's events (registrytest.Recorder).
type watcher struct{ *registrytest.Recorder }

// watch opens an instancer of service on r and records its events; the
// instancer stops when the test ends.
func watch(t testing.TB, r *Registry, service string) watcher {
	t.Helper()
	in, err := r.NewInstancer(ctxFor(t, 30*time.Second), service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return watcher{registrytest.Record(t, in)}
}

// await waits until the latest event satisfies ok, and returns when it
// first saw it.
func (w watcher) await(t testing.TB, timeout time.Duration, what string, ok func(sd.Event) bool) time.Time {
	t.Helper()
	w.WaitFor(t, timeout, what, ok)
	return time.Now()
}

func exactly(want ...string) func(sd.Event) bool {
	want = append([]string{}, want...)
	sort.Strings(want)
	return func(ev sd.Event) bool { return slices.Equal(registrytest.IDs(ev), want) }
}

func noErr(f func(sd.Event) bool) func(sd.Event) bool {
	return func(ev sd.Event) bool { return ev.Err == nil && f(ev) }
}

// awaitState polls r's Status until it is want.
func awaitState(t testing.TB, r *Registry, want registry.State, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for r.Status().State != want {
		if time.Now().After(deadline) {
			t.Fatalf("Status = %+v, want %s within %s", r.Status(), want, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Now()
}
