package kubernetes_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientset "k8s.io/client-go/kubernetes"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

const wait = 30 * time.Second

func client(t *testing.T) clientset.Interface {
	t.Helper()
	cs, err := testCluster(t).Clientset()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func record(t *testing.T, r *kubernetes.Registry, service string) *registrytest.Recorder {
	t.Helper()
	in, err := r.Instancer(ctxT(t, wait), service)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Stop)
	return registrytest.Record(t, in)
}

// Only ports whose names are Warren schemes become endpoints, each under
// its name: a metrics port is not a transport.
func TestInstancer_EndpointsArePortsByName(t *testing.T) {
	r, _ := newTestRegistry(t)
	defer r.Close()
	svc := uniq("byname")
	rec := record(t, r, svc)
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{
		"grpc://" + testHost + ":9090", "metrics://" + testHost + ":9100", "http://" + testHost + ":8080",
	}}
	if err := r.Register(ctxT(t, wait), inst); err != nil {
		t.Fatal(err)
	}
	ev, _ := rec.WaitFor(t, wait, inst.ID, registrytest.Has(inst.ID))
	got, _ := registrytest.ByID(ev, inst.ID)
	want := []string{"grpc://" + testHost + ":9090", "http://" + testHost + ":8080"}
	if !slices.Equal(got.Endpoints, want) {
		t.Fatalf("endpoints %v, want %v (the Pod's port order, metrics left out)", got.Endpoints, want)
	}
}

// A weight annotation that is not a number makes the instance unusable:
// it is skipped (and counted), never served with a made-up weight.
func TestInstancer_BadWeightAnnotationIsSkippedAndCounted(t *testing.T) {
	obs := &countingObserver{}
	r, _ := newTestRegistry(t, kubernetes.WithObserver(obs))
	defer r.Close()
	svc := uniq("badweight")
	rec := record(t, r, svc)
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}, Weight: 5}
	if err := r.Register(ctxT(t, wait), inst); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, wait, inst.ID, registrytest.Has(inst.ID))
	patch := []byte(`{"metadata":{"annotations":{"` + kubernetes.AnnotationWeight + `":"heavy"}}}`)
	if _, err := client(t).CoreV1().Pods(kubetest.Namespace).Patch(ctxT(t, wait), inst.ID, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, wait, inst.ID+" skipped", registrytest.Lacks(inst.ID))
	if n := obs.skipped(svc); n != 1 {
		t.Fatalf("observer's skipped count = %d, want 1", n)
	}
	// And says which and why, for warren ls and watch (report j56a F5).
	ins, err := r.Instancer(ctxT(t, wait), svc)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Stop()
	want := map[string]string{inst.ID: `annotation warren.dev/weight="heavy": want a positive integer`}
	if got := ins.(*kubernetes.Instancer).Skipped(); !maps.Equal(got, want) {
		t.Fatalf("Skipped() = %q, want %q", got, want)
	}
}

// Slices that list a Pod the cache does not have as ready (a half-written
// update, or a controller that has not caught up) are held back until
// they agree with the Pods: a client never sees that state.
func TestInstancer_HoldsSlicesThatDisagreeWithPods(t *testing.T) {
	cs := client(t)
	svc := uniq("gate")
	ghostSlice(t, cs, svc)
	r, _ := newTestRegistry(t, kubernetes.WithMaxHold(time.Hour))
	defer r.Close()
	rec := record(t, r, svc)
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}}
	if err := r.Register(ctxT(t, wait), inst); err != nil {
		t.Fatal(err)
	}
	if err := cs.DiscoveryV1().EndpointSlices(kubetest.Namespace).Delete(ctxT(t, wait), svc+"-ghost", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, wait, "exactly "+inst.ID, func(ev sd.Event) bool {
		return ev.Err == nil && slices.Equal(registrytest.IDs(ev), []string{inst.ID})
	})
	for i, ev := range rec.Events() {
		if _, ok := registrytest.ByID(ev, "ghost"); ok {
			t.Fatalf("event %d served the ghost endpoint the Pods never had: %v", i, ev.Instances)
		}
	}
}

// The hold is bounded: slices that never agree (a Pod on a Node that
// does not exist, say) are served as they are after the max hold.
func TestInstancer_ServesDisagreeingSlicesAfterTheMaxHold(t *testing.T) {
	svc := uniq("stuck")
	ghostSlice(t, client(t), svc)
	r, _ := newTestRegistry(t, kubernetes.WithMaxHold(500*time.Millisecond))
	defer r.Close()
	rec := record(t, r, svc)
	rec.WaitFor(t, wait, "the ghost served after the hold", registrytest.Has("ghost"))
}

// ghostSlice creates service (with a selector no Pod matches) and an
// EndpointSlice of its own, not the controller's, listing a ready Pod
// "ghost" that does not exist.
func ghostSlice(t *testing.T, cs clientset.Interface, service string) {
	t.Helper()
	ctx := ctxT(t, wait)
	_, err := cs.CoreV1().Services(kubetest.Namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service},
		Spec: corev1.ServiceSpec{
			ClusterIP: corev1.ClusterIPNone,
			Selector:  map[string]string{kubetest.LabelService: service},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	name, port, yes := "http", int32(8080), true
	_, err = cs.DiscoveryV1().EndpointSlices(kubetest.Namespace).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: service + "-ghost", Labels: map[string]string{
			discoveryv1.LabelServiceName: service,
			discoveryv1.LabelManagedBy:   "warren-test",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"192.0.2.20"},
			Conditions: discoveryv1.EndpointConditions{Ready: &yes},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: kubetest.Namespace, Name: "ghost"},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// Without a Kubelet (in a cluster), Register and Deregister only flip the
// state /readyz reports; they write nothing to the apiserver.
func TestRegistry_WithoutKubeletOnlyFlipsReadiness(t *testing.T) {
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(testCluster(t).Config()), kubernetes.WithNamespace(kubetest.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	svc := uniq("inpod")
	inst := registry.Instance{ID: svc + "-1", Name: svc, Endpoints: []string{"http://" + testHost + ":8080"}}
	if err := r.Register(ctxT(t, wait), inst); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.State != registry.StateRegistered {
		t.Fatalf("Status after Register = %+v", st)
	}
	if _, err := client(t).CoreV1().Pods(kubetest.Namespace).Get(ctxT(t, wait), inst.ID, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("Register wrote a Pod (err %v); only the kubelet does", err)
	}
	if err := r.Deregister(ctxT(t, wait), inst); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(); st.State != registry.StateWithdrawn {
		t.Fatalf("Status after Deregister = %+v", st)
	}
}

type countingObserver struct {
	registry.NopObserver
	mu   sync.Mutex
	skip map[string]int
}

func (o *countingObserver) Skipped(service string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.skip == nil {
		o.skip = map[string]int{}
	}
	o.skip[service] = n
}

func (o *countingObserver) skipped(service string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.skip[service]
}
