package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/warren-mesh/warren/framework/registry"
	k8sreg "github.com/warren-mesh/warren/framework/registry/kubernetes"
)

// Labels and annotations the Kubelet puts on the objects it writes.
const (
	// LabelService selects a service's Pods; it is the Service's selector.
	LabelService = "app.kubernetes.io/name"
	// LabelZone is the Node label the EndpointSlice controller copies into
	// each endpoint's zone.
	LabelZone = "topology.kubernetes.io/zone"

	annotationOwner   = "kubetest.warren.dev/owner"
	annotationAddress = "kubetest.warren.dev/address"
	annotationSpec    = "kubetest.warren.dev/spec"
)

var getOpts = metav1.GetOptions{}

// Kubelet stands in for the kubelets (and the scheduler) of a cluster
// that has none, as a kubernetes.Kubelet: SetReady(true) runs the
// instance as a Pod named by its ID, in a Service named by its name, on a
// Node of its zone, and sets it Ready; SetReady(false) sets it not Ready,
// as a failing readiness probe would.
//
// Each Kubelet plays one process. A Pod of the same ID at the same
// address is that process started again and is taken over (a restart); a
// Ready Pod of the ID at another address is another live process, and
// SetReady refuses with registry.ErrConflict — Kubernetes itself keeps Pod
// names unique. A Pod whose zone or ports changed is a rescheduled one:
// deleted and created again. SetReady(false) leaves a Pod another Kubelet
// has taken over alone.
type Kubelet struct {
	cs    kubernetes.Interface
	ns    string
	owner string
}

var _ k8sreg.Kubelet = (*Kubelet)(nil)

// Kubelet returns a Kubelet playing one new process.
func (c *Cluster) Kubelet() (*Kubelet, error) {
	cs, err := c.Clientset()
	if err != nil {
		return nil, err
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Kubelet{cs: cs, ns: Namespace, owner: hex.EncodeToString(b[:])}, nil
}

// SetReady implements kubernetes.Kubelet.
func (k *Kubelet) SetReady(ctx context.Context, inst registry.Instance, ready bool) error {
	if ready {
		return k.up(ctx, inst)
	}
	return k.down(ctx, inst)
}

func (k *Kubelet) up(ctx context.Context, inst registry.Instance) error {
	if err := k.ensureNode(ctx, inst.Zone); err != nil {
		return err
	}
	if err := k.ensureService(ctx, inst); err != nil {
		return err
	}
	pods := k.cs.CoreV1().Pods(k.ns)
	for range 20 {
		pod, err := pods.Get(ctx, inst.ID, getOpts)
		switch {
		case apierrors.IsNotFound(err):
			if pod, err = pods.Create(ctx, k.pod(inst), metav1.CreateOptions{}); err != nil {
				if apierrors.IsAlreadyExists(err) {
					continue
				}
				return fmt.Errorf("kubetest: create pod %s: %w", inst.ID, err)
			}
			return k.setStatus(ctx, pod, inst.Host(), true)
		case err != nil:
			return fmt.Errorf("kubetest: get pod %s: %w", inst.ID, err)
		}
		sameAddr := pod.Annotations[annotationAddress] == inst.HostPort()
		if !sameAddr && isReady(pod) && pod.DeletionTimestamp == nil {
			return fmt.Errorf("kubetest: pod %s is ready at %s: %w", inst.ID, pod.Annotations[annotationAddress], registry.ErrConflict)
		}
		if !sameAddr || pod.Annotations[annotationSpec] != spec(inst) {
			// Another address or zone is another Pod: delete this one
			// (at once, as a kubelet confirms a deletion) and start over.
			zero := int64(0)
			err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &pod.UID}})
			if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
				return fmt.Errorf("kubetest: delete pod %s: %w", inst.ID, err)
			}
			continue
		}
		want := k.annotations(inst)
		if !maps.Equal(pod.Annotations, want) {
			pod.Annotations = want
			if pod, err = pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
				if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
					continue
				}
				return fmt.Errorf("kubetest: update pod %s: %w", inst.ID, err)
			}
		}
		return k.setStatus(ctx, pod, inst.Host(), true)
	}
	return fmt.Errorf("kubetest: pod %s keeps changing under the Kubelet", inst.ID)
}

func (k *Kubelet) down(ctx context.Context, inst registry.Instance) error {
	pod, err := k.cs.CoreV1().Pods(k.ns).Get(ctx, inst.ID, getOpts)
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("kubetest: get pod %s: %w", inst.ID, err)
	case pod.Annotations[annotationOwner] != k.owner:
		return nil // taken over by a newer process
	}
	return k.setStatus(ctx, pod, pod.Status.PodIP, false)
}

// setStatus writes what a kubelet reports: Running at ip, Ready or not.
// The write is conditional on the Pod's UID, so a status never lands on a
// Pod created since.
func (k *Kubelet) setStatus(ctx context.Context, pod *corev1.Pod, ip string, ready bool) error {
	st := corev1.ConditionFalse
	if ready {
		st = corev1.ConditionTrue
	}
	now := metav1.NewTime(time.Now())
	patch := map[string]any{
		"metadata": map[string]any{"uid": pod.UID},
		"status": map[string]any{
			"phase":  corev1.PodRunning,
			"podIP":  ip,
			"podIPs": []map[string]string{{"ip": ip}},
			"conditions": []corev1.PodCondition{
				{Type: corev1.PodReady, Status: st, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: st, LastTransitionTime: now},
			},
		},
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = k.cs.CoreV1().Pods(k.ns).Patch(ctx, pod.Name, types.MergePatchType, b, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("kubetest: set pod %s ready=%t: %w", pod.Name, ready, err)
	}
	return nil
}

func (k *Kubelet) annotations(inst registry.Instance) map[string]string {
	a := k8sreg.Annotations(inst)
	a[annotationOwner] = k.owner
	a[annotationAddress] = inst.HostPort()
	a[annotationSpec] = spec(inst)
	return a
}

// spec is what a Pod cannot change without being replaced: its zone
// (its Node) and its ports.
func spec(inst registry.Instance) string {
	return inst.Zone + " " + strings.Join(inst.Endpoints, " ")
}

func (k *Kubelet) pod(inst registry.Instance) *corev1.Pod {
	var ports []corev1.ContainerPort
	for _, ep := range inst.Endpoints {
		scheme, _, port, _ := registry.ParseEndpoint(ep)
		ports = append(ports, corev1.ContainerPort{Name: scheme, ContainerPort: int32(port), Protocol: corev1.ProtocolTCP})
	}
	no, zero := false, int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        inst.ID,
			Labels:      map[string]string{LabelService: inst.Name},
			Annotations: k.annotations(inst),
		},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName(inst.Zone),
			AutomountServiceAccountToken:  &no,
			EnableServiceLinks:            &no,
			TerminationGracePeriodSeconds: &zero,
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "warren.invalid/" + inst.Name, // never pulled: no kubelet runs
				Ports: ports,
			}},
		},
	}
}

func nodeName(zone string) string {
	if zone == "" {
		return "kubetest-node"
	}
	return "kubetest-" + zone
}

func (k *Kubelet) ensureNode(ctx context.Context, zone string) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName(zone)}}
	if zone != "" {
		n.Labels = map[string]string{LabelZone: zone}
	}
	_, err := k.cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubetest: create node %s: %w", n.Name, err)
	}
	return nil
}

// servicePort is the Service port of each scheme; the Pods' ports are
// reached by name, so these numbers only have to be distinct.
func servicePort(scheme string) int32 {
	switch scheme {
	case "http":
		return 80
	case "https":
		return 443
	case "grpc":
		return 9090
	case "grpcs":
		return 9443
	}
	var h int32
	for _, c := range scheme {
		h = (h*31 + c) % 20000
	}
	return 20000 + h
}

// ensureService creates the headless Service of inst.Name, or adds the
// ports it lacks.
func (k *Kubelet) ensureService(ctx context.Context, inst registry.Instance) error {
	svcs := k.cs.CoreV1().Services(k.ns)
	for range 20 {
		svc, err := svcs.Get(ctx, inst.Name, getOpts)
		if apierrors.IsNotFound(err) {
			svc = &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: inst.Name},
				Spec: corev1.ServiceSpec{
					ClusterIP: corev1.ClusterIPNone,
					Selector:  map[string]string{LabelService: inst.Name},
				},
			}
			addPorts(svc, inst)
			_, err = svcs.Create(ctx, svc, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("kubetest: create service %s: %w", inst.Name, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("kubetest: get service %s: %w", inst.Name, err)
		}
		if !addPorts(svc, inst) {
			return nil
		}
		_, err = svcs.Update(ctx, svc, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("kubetest: update service %s: %w", inst.Name, err)
		}
		return nil
	}
	return fmt.Errorf("kubetest: service %s keeps changing", inst.Name)
}

// addPorts adds a port per scheme of inst that svc lacks, in inst's
// order, and reports whether it added any.
func addPorts(svc *corev1.Service, inst registry.Instance) bool {
	added := false
	for _, ep := range inst.Endpoints {
		scheme, _, _, _ := registry.ParseEndpoint(ep)
		has := false
		for _, p := range svc.Spec.Ports {
			has = has || p.Name == scheme
		}
		if !has {
			svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
				Name: scheme, Port: servicePort(scheme), TargetPort: intstr.FromString(scheme), Protocol: corev1.ProtocolTCP,
			})
			added = true
		}
	}
	return added
}

func isReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
