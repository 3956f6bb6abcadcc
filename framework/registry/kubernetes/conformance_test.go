package kubernetes_test

import (
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// TestConformance runs the registry suite against the real apiserver and
// EndpointSlice controller. Each Registry plays one process with its own
// kubetest.Kubelet: Register and Deregister flip its Pod's readiness,
// and discovery sees the change only through the controller's
// EndpointSlices. The restart case kills and restarts the apiserver.
func TestConformance(t *testing.T) {
	testCluster(t)
	registrytest.Run(t, registrytest.Harness{
		Lease: registrytest.NoLease, // the Pod's readiness is the record
		Open: func(t testing.TB) registry.Registry {
			r, _ := newTestRegistry(t)
			return r
		},
		Restart: func(t testing.TB) {
			if err := testCluster(t).RestartAPIServer(ctxT(t, 2*time.Minute)); err != nil {
				t.Fatal(err)
			}
		},
		Host: testHost,
	})
}
