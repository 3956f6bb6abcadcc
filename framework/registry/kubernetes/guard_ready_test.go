package kubernetes

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// docs/kubernetes.md, the instance field table: membership is "ready
// endpoints only (conditions.ready true or unset)". The EndpointSlice
// controller always sets ready, so no test against the real one meets an
// unset condition; a slice written by another controller (or an older
// one) may leave it out, and the API says unset means ready. Reading an
// unset condition as not ready left such endpoints out of every set and
// passed every test.
func TestCompute_AnEndpointWithReadyUnsetIsServed(t *testing.T) {
	s := newStores()
	s.svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "svc"}}})
	pod := gatePod("a", 20001, true)
	s.pods.Add(pod)
	sl := gateSlice(pod, true)
	sl.Endpoints[0].Conditions.Ready = nil
	s.slices.Add(sl)
	insts, agree := s.instancer("svc").compute()
	if !agree || !slices.Equal(ids(insts), []string{"a"}) {
		t.Fatalf("ready unset: agree %t, instances %v; want a served", agree, ids(insts))
	}
}

// docs/kubernetes.md: --kubernetes-max-hold defaults to 10 s and
// --kubernetes-ports to http, https, grpc, grpcs; the namespace and
// kubeconfig default to none (found as kubectl does). TestDefaults checks
// New's defaults; the flags set their own, and a --kubernetes-max-hold
// default of 5 s passed every test.
func TestBackend_FlagDefaultsAreTheDocumentedOnes(t *testing.T) {
	s := registrytest.ParseBackend(t, Backend()).(*settings)
	if s.maxHold != 10*time.Second || !slices.Equal(s.ports, []string{"http", "https", "grpc", "grpcs"}) || s.namespace != "" || s.kubeconfig != "" {
		t.Fatalf("flag defaults %s; documented max-hold 10s, ports http,https,grpc,grpcs, no namespace or kubeconfig", s)
	}
}
