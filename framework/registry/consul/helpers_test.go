package consul

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// shared is the package's agent, started by TestMain. Tests that stop or
// restart an agent start their own.
var shared *consultest.Agent

func TestMain(m *testing.M) {
	if !consultest.Skipped() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		a, err := consultest.Start(ctx)
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: the consul registry tests need a real Consul agent: %v\n"+
				"(set %s=1 to skip them)\n", err, consultest.SkipEnv)
			os.Exit(1)
		}
		shared = a
	}
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	os.Exit(code)
}

// needAgent returns the shared agent, or skips when WARREN_SKIP_CONSUL=1.
func needAgent(t *testing.T) *consultest.Agent {
	t.Helper()
	if shared == nil {
		t.Skipf("%s=1", consultest.SkipEnv)
	}
	return shared
}

// ownAgent makes (but does not start) an agent of the test's own, for a
// test that stops or restarts it or needs it configured otherwise.
func ownAgent(t *testing.T, opts ...consultest.Option) *consultest.Agent {
	t.Helper()
	needAgent(t)
	a, err := consultest.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent log:\n%s", a.Log())
		}
		a.Close()
	})
	return a
}

func newRegistry(t *testing.T, addr string, opts ...Option) *Registry {
	t.Helper()
	opts = append([]Option{WithAddress(addr), WithRetryBackoff(50*time.Millisecond, time.Second)}, opts...)
	r, err := New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newInstancer(t *testing.T, r *Registry, service string, opts ...InstancerOption) *Instancer {
	t.Helper()
	in, err := r.NewInstancer(context.Background(), service, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return in
}

// countingTransport counts the requests that reach the network.
type countingTransport struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(req)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
