package kubernetes_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// cluster is the package's control plane, shared by every test.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := kubetest.Start(ctx)
	cancel()
	if err != nil {
		// Fail, never skip: `make test` builds the servers (kube-deps).
		fmt.Fprintln(os.Stderr, "kubernetes tests need a control plane:", err)
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Close()
	os.Exit(code)
}

// testHost is where the tests' Pods are: documentation range, never dialled.
const testHost = "192.0.2.10"

// newTestRegistry opens a Registry of the test cluster with a Kubelet of
// its own (one process), logging to a buffer shown if the test fails.
func newTestRegistry(t testing.TB, opts ...kubernetes.Option) (*kubernetes.Registry, *kubetest.Kubelet) {
	t.Helper()
	k, err := cluster.Kubelet()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	r, err := kubernetes.New(context.Background(), append([]kubernetes.Option{
		kubernetes.WithRESTConfig(cluster.Config()),
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
