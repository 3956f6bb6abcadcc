package kubernetes_test

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

func parseBackend(t *testing.T, args ...string) registry.Settings {
	t.Helper()
	return registrytest.ParseBackend(t, kubernetes.Backend(), args...)
}

// A process outside the cluster opens the backend from its flags (a
// kubeconfig) and discovers what a Kubelet put into rotation.
func TestBackend_OpensARegistryFromItsFlags(t *testing.T) {
	s := parseBackend(t, "--kubernetes-kubeconfig="+testCluster(t).Kubeconfig(), "--kubernetes-namespace="+kubetest.Namespace, "--kubernetes-ports=http,grpc")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := s.Open(ctxT(t, 30*time.Second), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	svc := uniq("flags")
	in, err := r.Instancer(ctxT(t, 30*time.Second), svc)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	writer, _ := newTestRegistry(t)
	defer writer.Close()
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}}
	if err := writer.Register(ctxT(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 30*time.Second, inst.ID+" discovered", registrytest.Has(inst.ID))
}

func TestBackend_BadFlagsAreNamed(t *testing.T) {
	for args, want := range map[string]string{
		"--kubernetes-max-hold=0":           "--kubernetes-max-hold",
		"--kubernetes-ports=,":              "--kubernetes-ports",
		"--kubernetes-ports=HTTP":           "--kubernetes-ports",
		"--kubernetes-namespace=Not_A_Name": "--kubernetes-namespace",
	} {
		if err := parseBackend(t, args).Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to name %s", args, err, want)
		}
	}
}
