package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The package's control plane, shared by every test that needs one and
// started by the first (tests of pure logic run without it).
var (
	clusterOnce sync.Once
	cluster     *kubetest.Cluster
	clusterErr  error
)

func testCluster(t testing.TB) *kubetest.Cluster {
	t.Helper()
	clusterOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cluster, clusterErr = kubetest.Start(ctx)
	})
	if clusterErr != nil {
		// Fail, never skip: `make test` builds the servers (kube-deps).
		t.Fatalf("kubernetes tests need a control plane: %v", clusterErr)
	}
	return cluster
}

func TestMain(m *testing.M) {
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

// seq makes names unique within the test process: the control plane is
// shared, and `go test -count=N` runs each test N times against it.
var seq atomic.Int64

// uniq returns name with a number of its own appended.
func uniq(name string) string { return fmt.Sprintf("%s%d", name, seq.Add(1)) }

// testHost is where the tests' Pods are: documentation range, never dialled.
const testHost = "192.0.2.10"

// newTestRegistry opens a Registry of the test cluster with a Kubelet of
// its own (one process), logging to a buffer shown if the test fails.
func newTestRegistry(t testing.TB, opts ...kubernetes.Option) (*kubernetes.Registry, *kubetest.Kubelet) {
	t.Helper()
	k, err := testCluster(t).Kubelet()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	r, err := kubernetes.New(context.Background(), append([]kubernetes.Option{
		kubernetes.WithRESTConfig(testCluster(t).Config()),
		kubernetes.WithNamespace(kubetest.Namespace),
		kubernetes.WithKubelet(k),
		kubernetes.WithCloseTimeout(30 * time.Second),
		kubernetes.WithLogger(log.NewLogfmtLogger(logs)),
	}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("registry log:\n%s", logs)
		}
	})
	return r, k
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
