package kubernetes

import (
	"fmt"
	"slices"
	"testing"

	"github.com/go-kit/log"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/warren-mesh/warren/framework/registry"
)

// stores are informer stores filled by the test, in the order a watch
// would deliver the objects, so compute sees exactly the cache states an
// instancer would.
type stores struct {
	pods, svcs, slices cache.Indexer
}

func newStores() *stores {
	idx := func() cache.Indexer {
		return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	}
	return &stores{pods: idx(), svcs: idx(), slices: idx()}
}

func (s *stores) instancer(service string) *Instancer {
	r := &Registry{cfg: defaultConfig()}
	return &Instancer{
		r: r, service: service, logger: log.NewNopLogger(), skipped: map[string]string{},
		inf: &caches{
			pods:   corelisters.NewPodLister(s.pods).Pods("ns"),
			svcs:   corelisters.NewServiceLister(s.svcs).Services("ns"),
			slices: discoverylisters.NewEndpointSliceLister(s.slices).EndpointSlices("ns"),
		},
	}
}

func gatePod(name string, port int32, ready bool) *corev1.Pod {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name), Labels: map[string]string{"app": "svc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: port}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "192.0.2.10",
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
	}
}

// gateSlice is the controller's slice of one Pod (each Pod has its own
// port, so its own slice), listing it ready or not.
func gateSlice(pod *corev1.Pod, ready bool) *discoveryv1.EndpointSlice {
	name, port := "http", pod.Spec.Containers[0].Ports[0].ContainerPort
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: "svc-" + pod.Name, Namespace: "ns", Labels: map[string]string{
			discoveryv1.LabelServiceName: "svc", discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io",
		}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{pod.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ns", Name: pod.Name, UID: pod.UID},
		}},
	}
}

func ids(insts []string) []string {
	out := []string{}
	for _, s := range insts {
		inst, _ := registry.ParseInstance(s)
		out = append(out, inst.ID)
	}
	slices.Sort(out)
	return out
}

// The controller coalesces "a not ready" and "c ready" into one sync and
// writes c's new slice before it updates a's: for a moment the slices
// list {a, b, c}, a set the service never had. compute must report that
// moment as a disagreement (held back), and every set it lets through
// must be one of the service's real states, in order.
func TestCompute_HoldsHalfWrittenMultiSliceSyncs(t *testing.T) {
	s := newStores()
	s.svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "svc"}}})
	a, b, c := gatePod("a", 20001, true), gatePod("b", 20002, true), gatePod("c", 20003, false)
	for _, p := range []*corev1.Pod{a, b, c} {
		s.pods.Add(p)
	}
	s.slices.Add(gateSlice(a, true))
	s.slices.Add(gateSlice(b, true))
	in := s.instancer("svc")
	states := [][]string{{"a", "b"}, {"b"}, {"b", "c"}}
	var published [][]string
	step := func(what string, wantAgree bool) {
		t.Helper()
		insts, agree := in.compute()
		if agree != wantAgree {
			t.Fatalf("%s: agree = %t, want %t (slices %v)", what, agree, wantAgree, ids(insts))
		}
		if agree {
			published = append(published, ids(insts))
		}
	}
	step("start", true)
	// The Pods change; the watch on Pods delivers both before the
	// controller's writes arrive.
	a2, c2 := gatePod("a", 20001, false), gatePod("c", 20003, true)
	s.pods.Update(a2)
	step("a not ready, slices not yet", false)
	s.pods.Update(c2)
	step("c ready, slices not yet", false)
	// The controller's sync: create c's slice, then update a's.
	s.slices.Add(gateSlice(c2, true))
	step("c's slice created, a's not yet updated", false)
	s.slices.Update(gateSlice(a2, false))
	step("a's slice updated", true)
	at := 0
	for i, set := range published {
		j := slices.IndexFunc(states, func(st []string) bool { return slices.Equal(st, set) })
		if j < at {
			t.Fatalf("published set %d %v is not a later state of %v", i, set, states)
		}
		at = j
	}
	if last := published[len(published)-1]; !slices.Equal(last, []string{"b", "c"}) {
		t.Fatalf("last published %v, want [b c]", last)
	}
}

// A Pod recreated under the same name is a new Pod: slices still listing
// the old one (by UID) disagree until the controller catches up.
func TestCompute_ARecreatedPodIsNotTheOldOne(t *testing.T) {
	s := newStores()
	s.svcs.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc", Namespace: "ns"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "svc"}}})
	old := gatePod("a", 20001, true)
	s.pods.Add(old)
	s.slices.Add(gateSlice(old, true))
	in := s.instancer("svc")
	if _, agree := in.compute(); !agree {
		t.Fatal("the first state disagrees")
	}
	fresh := gatePod("a", 20002, true)
	fresh.UID = "uid-a-2"
	s.pods.Update(fresh)
	if insts, agree := in.compute(); agree {
		t.Fatalf("slices of the old Pod agree with the new one: %v", insts)
	}
	s.slices.Update(gateSlice(fresh, true))
	insts, agree := in.compute()
	if !agree || len(insts) != 1 {
		t.Fatalf("after the controller caught up: agree %t, %v", agree, insts)
	}
	if inst, _ := registry.ParseInstance(insts[0]); inst.HostPort() != fmt.Sprintf("%s:%d", "192.0.2.10", 20002) {
		t.Fatalf("served %s, want the new Pod's port", inst.HostPort())
	}
}
