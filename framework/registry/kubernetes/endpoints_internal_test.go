package kubernetes

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-mesh/warren/framework/registry"
)

// slicePorts is a slice of user's with the ports named as in a chart: two
// Warren schemes and a metrics port, which is no endpoint.
func slicePorts() *discoveryv1.EndpointSlice {
	port := func(name string, n int32) discoveryv1.EndpointPort {
		return discoveryv1.EndpointPort{Name: &name, Port: &n}
	}
	return &discoveryv1.EndpointSlice{Ports: []discoveryv1.EndpointPort{
		port("http", 8080), port("metrics", 9100), port("grpcs", 9443),
	}}
}

func podEndpoint(pod string) discoveryv1.Endpoint {
	zone := "zone-a"
	return discoveryv1.Endpoint{
		Addresses: []string{"192.0.2.7"},
		Zone:      &zone,
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod},
	}
}

// The annotations docs/kubernetes.md and the package doc list, read as
// documented: the version label when there is no version annotation,
// tags trimmed, one metadata key per meta.warren.dev/KEY (an empty KEY is
// none), the Pod's name as ID, every default scheme (grpcs too) an
// endpoint and metrics not.
func TestEndpointInstance_ReadsTheDocumentedAnnotations(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name:   "user-7f9c",
		Labels: map[string]string{labelVersion: "1.4.0"},
		Annotations: map[string]string{
			AnnotationWeight:         " 7 ",
			AnnotationTags:           " canary , blue,,",
			MetadataPrefix + "team":  "core",
			MetadataPrefix:           "no key",
			"other.example.com/note": "not metadata",
		},
	}}
	got, err := endpointInstance("user", slicePorts(), podEndpoint(pod.Name), pod, DefaultSchemes)
	if err != nil {
		t.Fatal(err)
	}
	want := registry.Instance{
		ID:        "user-7f9c",
		Name:      "user",
		Endpoints: []string{"http://192.0.2.7:8080", "grpcs://192.0.2.7:9443"},
		Version:   "1.4.0",
		Zone:      "zone-a",
		Weight:    7,
		Tags:      []string{"blue", "canary"},
		Metadata:  map[string]string{"team": "core"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("instance\n got %+v\nwant %+v", got, want)
	}

	// The annotation wins over the label.
	pod.Annotations[AnnotationVersion] = "2.0.0"
	if got, err := endpointInstance("user", slicePorts(), podEndpoint(pod.Name), pod, DefaultSchemes); err != nil || got.Version != "2.0.0" {
		t.Fatalf("version = %q (err %v), want the annotation's 2.0.0", got.Version, err)
	}

	// Without a Pod reference the ID is name-address-port.
	ep := podEndpoint("")
	ep.TargetRef = nil
	got, err = endpointInstance("user", slicePorts(), ep, nil, DefaultSchemes)
	if err != nil {
		t.Fatal(err)
	}
	if want := registry.DefaultID("user", "192.0.2.7", 8080); got.ID != want {
		t.Fatalf("ID without a Pod = %q, want %q", got.ID, want)
	}
}

// A weight that is not a positive integer makes the endpoint unusable
// (skipped and named), never served with a weight of its own making.
func TestEndpointInstance_RefusesAWeightThatIsNotPositive(t *testing.T) {
	for _, w := range []string{"0", "-3", "heavy", ""} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "user-1", Annotations: map[string]string{AnnotationWeight: w}}}
		if got, err := endpointInstance("user", slicePorts(), podEndpoint(pod.Name), pod, DefaultSchemes); err == nil {
			t.Errorf("weight %q: instance %+v, want an error", w, got)
		}
	}
}

// podReady follows the EndpointSlice controller: ready only with a true
// Ready condition and not terminating, unless the Service publishes
// not-ready addresses.
func TestPodReady_IsTheControllersRule(t *testing.T) {
	cond := func(s corev1.ConditionStatus) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: s}}
	}
	gone := metav1.NewTime(time.Unix(1, 0))
	for _, tc := range []struct {
		name            string
		pod             corev1.Pod
		publishNotReady bool
		want            bool
	}{
		{"ready", corev1.Pod{Status: corev1.PodStatus{Conditions: cond(corev1.ConditionTrue)}}, false, true},
		{"not ready", corev1.Pod{Status: corev1.PodStatus{Conditions: cond(corev1.ConditionFalse)}}, false, false},
		{"no Ready condition", corev1.Pod{}, false, false},
		{"ready but terminating", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &gone}, Status: corev1.PodStatus{Conditions: cond(corev1.ConditionTrue)}}, false, false},
		{"not ready, published anyway", corev1.Pod{Status: corev1.PodStatus{Conditions: cond(corev1.ConditionFalse)}}, true, true},
	} {
		if got := podReady(&tc.pod, tc.publishNotReady); got != tc.want {
			t.Errorf("%s: podReady = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The defaults the docs state: the max hold of 10 s (docs/kubernetes.md,
// --kubernetes-max-hold) and the schemes that become endpoints.
func TestDefaults_AreTheDocumentedOnes(t *testing.T) {
	c := defaultConfig()
	if c.maxHold != 10*time.Second {
		t.Errorf("default max hold %s, docs say 10 s", c.maxHold)
	}
	if want := []string{"http", "https", "grpc", "grpcs"}; !reflect.DeepEqual(c.schemes, want) {
		t.Errorf("default schemes %q, docs say %q", c.schemes, want)
	}
}
