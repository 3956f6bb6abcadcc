package kubernetes

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/warren-mesh/warren/framework/registry"
)

// Pod annotations an instancer reads. Everything else about an instance
// comes from its EndpointSlice: address, ports by name, zone, readiness.
const (
	// AnnotationVersion is the instance's version; without it the Pod's
	// app.kubernetes.io/version label, if any.
	AnnotationVersion = "warren.dev/version"
	// AnnotationWeight is the instance's balancing weight, a positive
	// integer (default registry.DefaultWeight).
	AnnotationWeight = "warren.dev/weight"
	// AnnotationTags is a comma-separated list of tags.
	AnnotationTags = "warren.dev/tags"
	// MetadataPrefix prefixes one annotation per metadata key:
	// meta.warren.dev/team: core is the metadata team=core.
	MetadataPrefix = "meta.warren.dev/"
	// labelVersion is the recommended label Helm charts set.
	labelVersion = "app.kubernetes.io/version"
)

// endpointInstance builds the instance of one ready endpoint of service's
// slice; pod is the endpoint's Pod when the cache has it (nil otherwise:
// the instance then has only what the slice says).
func endpointInstance(service string, slice *discoveryv1.EndpointSlice, ep discoveryv1.Endpoint, pod *corev1.Pod, schemes []string) (registry.Instance, error) {
	if len(ep.Addresses) == 0 {
		return registry.Instance{}, fmt.Errorf("endpoint without an address")
	}
	host := ep.Addresses[0]
	inst := registry.Instance{Name: service}
	for _, p := range slice.Ports {
		if p.Name == nil || p.Port == nil || !slices.Contains(schemes, *p.Name) {
			continue
		}
		inst.Endpoints = append(inst.Endpoints, registry.EndpointURL(*p.Name, host, int(*p.Port)))
	}
	if len(inst.Endpoints) == 0 {
		return registry.Instance{}, fmt.Errorf("%s: no port named %s", host, strings.Join(schemes, ", "))
	}
	if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && ep.TargetRef.Name != "" {
		inst.ID = ep.TargetRef.Name
	} else {
		inst.ID = registry.DefaultID(service, host, portOf(inst.Endpoints[0]))
	}
	if ep.Zone != nil {
		inst.Zone = *ep.Zone
	}
	if pod != nil {
		inPodOrder(inst.Endpoints, pod)
		if err := fromAnnotations(&inst, pod); err != nil {
			return registry.Instance{}, err // the caller names the Pod
		}
	}
	if err := inst.Validate(); err != nil {
		return registry.Instance{}, err
	}
	return inst, nil
}

// inPodOrder sorts endpoints (named by scheme) in the order the Pod's
// containers declare their ports. The EndpointSlice controller lists a
// slice's ports in an order of its own, so without this an instance's
// first endpoint (the one an HTTP-only caller and DefaultID use) could
// change with a controller's whim rather than with the Pod.
func inPodOrder(endpoints []string, pod *corev1.Pod) {
	rank := map[string]int{}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if _, ok := rank[p.Name]; !ok && p.Name != "" {
				rank[p.Name] = len(rank)
			}
		}
	}
	at := func(ep string) int {
		scheme, _, _, _ := registry.ParseEndpoint(ep)
		if r, ok := rank[scheme]; ok {
			return r
		}
		return len(rank) // ports the Pod does not name keep the slice's order, last
	}
	slices.SortStableFunc(endpoints, func(a, b string) int { return at(a) - at(b) })
}

// fromAnnotations fills version, weight, tags and metadata from the Pod.
func fromAnnotations(inst *registry.Instance, pod *corev1.Pod) error {
	a := pod.Annotations
	inst.Version = a[AnnotationVersion]
	if inst.Version == "" {
		inst.Version = pod.Labels[labelVersion]
	}
	if w, ok := a[AnnotationWeight]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n <= 0 {
			return fmt.Errorf("annotation %s=%q: want a positive integer", AnnotationWeight, w)
		}
		inst.Weight = n
	}
	for _, t := range strings.Split(a[AnnotationTags], ",") {
		if t = strings.TrimSpace(t); t != "" {
			inst.Tags = append(inst.Tags, t)
		}
	}
	slices.Sort(inst.Tags)
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if key, ok := strings.CutPrefix(k, MetadataPrefix); ok && key != "" {
			if inst.Metadata == nil {
				inst.Metadata = map[string]string{}
			}
			inst.Metadata[key] = a[k]
		}
	}
	return nil
}

// Annotations returns the Pod annotations that carry inst's version,
// weight, tags and metadata, as an instancer reads them back: what a
// chart or a Kubelet writes on the Pod.
func Annotations(inst registry.Instance) map[string]string {
	out := map[string]string{}
	if inst.Version != "" {
		out[AnnotationVersion] = inst.Version
	}
	if inst.Weight > 0 {
		out[AnnotationWeight] = strconv.Itoa(inst.Weight)
	}
	if len(inst.Tags) > 0 {
		out[AnnotationTags] = strings.Join(inst.Tags, ",")
	}
	for k, v := range inst.Metadata {
		out[MetadataPrefix+k] = v
	}
	return out
}

func portOf(ep string) int {
	_, _, port, _ := registry.ParseEndpoint(ep)
	return port
}

// podReady is whether the EndpointSlice controller marks pod's endpoint
// ready: a Ready condition, not terminating (or the Service publishes
// not-ready addresses).
func podReady(pod *corev1.Pod, publishNotReady bool) bool {
	if publishNotReady {
		return true
	}
	if pod.DeletionTimestamp != nil {
		return false
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// inEndpoints is whether the EndpointSlice controller lists pod at all:
// it has an address and has not finished.
func inEndpoints(pod *corev1.Pod) bool {
	if pod.Status.PodIP == "" && len(pod.Status.PodIPs) == 0 {
		return false
	}
	return pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}
