package k8s

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The numbers docs/kubernetes.md gives for the chart's defaults, which the
// other chart tests check only loosely (a probe exists, the grace period
// is long enough): the readiness probe every second, out after one
// failure ("A crashed process leaves rotation when its readiness probe
// fails (periodSeconds: 1, failureThreshold: 1 in the chart)"); preStop
// 5 s, WARREN_GRACE 2 s, WARREN_DRAIN_TIMEOUT 15 s and
// terminationGracePeriodSeconds = preStop + grace + drain + 5 s; the
// image warren/services:dev with IfNotPresent; a scaled service's
// PodDisruptionBudget maxUnavailable 1; with metrics.enabled, the metrics
// port 9100 and its scrape annotation.
func TestChart_DefaultsAreTheDocumentedNumbers(t *testing.T) {
	objs, err := render(t, "services.user.replicas=3")
	if err != nil {
		t.Fatal(err)
	}
	var deployments, pdbs int
	for _, o := range objs {
		switch o.GetKind() {
		case "Deployment":
			deployments++
			var d appsv1.Deployment
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
				t.Fatal(err)
			}
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			if p := c.ReadinessProbe; p == nil {
				t.Errorf("%s: no readiness probe", d.Name)
			} else if p.PeriodSeconds != 1 || p.FailureThreshold != 1 {
				t.Errorf("%s: readiness probe every %d s, out after %d failures; documented periodSeconds 1, failureThreshold 1", d.Name, p.PeriodSeconds, p.FailureThreshold)
			}
			if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds != 5 {
				t.Errorf("%s: preStop %v, documented a 5 s sleep", d.Name, c.Lifecycle.String())
			}
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			if env["WARREN_GRACE"] != "2s" || env["WARREN_DRAIN_TIMEOUT"] != "15s" {
				t.Errorf("%s: WARREN_GRACE=%q WARREN_DRAIN_TIMEOUT=%q, documented 2s and 15s", d.Name, env["WARREN_GRACE"], env["WARREN_DRAIN_TIMEOUT"])
			}
			if g := spec.TerminationGracePeriodSeconds; g == nil {
				t.Errorf("%s: no terminationGracePeriodSeconds", d.Name)
			} else if *g != 5+2+15+5 {
				t.Errorf("%s: terminationGracePeriodSeconds %d, documented preStop + grace + drain + 5 s = 27", d.Name, *g)
			}
			if c.Image != "warren/services:dev" || c.ImagePullPolicy != "IfNotPresent" {
				t.Errorf("%s: image %q (%s), documented warren/services:dev with IfNotPresent", d.Name, c.Image, c.ImagePullPolicy)
			}
		case "PodDisruptionBudget":
			pdbs++
			var p policyv1.PodDisruptionBudget
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &p); err != nil {
				t.Fatal(err)
			}
			if p.Spec.MaxUnavailable == nil || p.Spec.MaxUnavailable.IntValue() != 1 || p.Spec.MinAvailable != nil {
				t.Errorf("PodDisruptionBudget %s: maxUnavailable %v, minAvailable %v; documented maxUnavailable 1", p.Name, p.Spec.MaxUnavailable, p.Spec.MinAvailable)
			}
		}
	}
	if deployments == 0 || pdbs != 1 {
		t.Fatalf("rendered %d Deployments and %d PodDisruptionBudgets; want some and one (user, 3 replicas)", deployments, pdbs)
	}

	objs, err = render(t, "metrics.enabled=true", `metrics.networkPolicy.from[0].podSelector.matchLabels.app=prometheus`)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		port := int32(0)
		for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
			if p.Name == "metrics" {
				port = p.ContainerPort
			}
		}
		if port != 9100 || d.Spec.Template.Annotations["prometheus.io/port"] != "9100" {
			t.Errorf("%s with metrics.enabled: metrics port %d, scrape port annotation %q; documented 9100", d.Name, port, d.Spec.Template.Annotations["prometheus.io/port"])
		}
	}
}
