// Package k8s checks the Helm chart in deploy/k8s the way a cluster would:
// `helm lint` and `helm template` (bin/helm), then every rendered object
// is created with a server-side dry run (strict field validation) on a real
// kube-apiserver (framework/registry/kubernetes/kubetest). A value the
// chart or the apiserver cannot use fails the test.
package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
)

const chartDir = "../../deploy/k8s"

var (
	cluster *kubetest.Cluster
	helm    string
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	c, err := kubetest.Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "the chart test needs a control plane:", err)
		os.Exit(1)
	}
	bin, _ := kubetest.BinDir()
	helm = filepath.Join(bin, "helm")
	if _, err := os.Stat(helm); err != nil {
		fmt.Fprintln(os.Stderr, "the chart test needs bin/helm (make kube-tools):", err)
		c.Close()
		os.Exit(1)
	}
	cluster = c
	code := m.Run()
	c.Close()
	os.Exit(code)
}

// render runs helm lint and helm template with the given --set flags and
// returns the rendered objects.
func render(t *testing.T, sets ...string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	var flags []string
	for _, s := range sets {
		flags = append(flags, "--set", s)
	}
	return renderFlags(t, flags...)
}

// renderFlags is render with any helm flags (--set-json, -f).
func renderFlags(t *testing.T, flags ...string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	home := t.TempDir()
	run := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, helm, args...)
		cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("helm %s: %w\n%s%s", args[0], err, out, stderr.String())
		}
		return out, nil
	}
	if _, err := run(append([]string{"lint", "--strict", chartDir}, flags...)...); err != nil {
		return nil, err
	}
	out, err := run(append([]string{"template", "mesh", chartDir, "--namespace", kubetest.Namespace}, flags...)...)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("rendered YAML: %w", err)
		}
		if len(m) > 0 {
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs, nil
}

// dryRun creates every object with a server-side dry run and strict field
// validation, and returns every refusal.
func dryRun(t *testing.T, objs []*unstructured.Unstructured) error {
	t.Helper()
	cfg := cluster.Config()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err))
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ri = dyn.Resource(m.Resource).Namespace(kubetest.Namespace)
		}
		_, err = ri.Create(ctx, o, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err))
		}
	}
	return errors.Join(errs...)
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

// Every registry choice renders objects the apiserver accepts, with the
// parts the lifecycle needs.
func TestChart_EveryRegistryChoiceValidatesOnTheAPIServer(t *testing.T) {
	for name, sets := range map[string][]string{
		"kubernetes": nil,
		"etcd":       {"registry=etcd", "etcd.install=true"},
		"consul":     {"registry=consul", "consul.address=consul-server:8500"},
		"zookeeper":  {"registry=zookeeper", `zookeeper.servers=zk-0.zk:2181\,zk-1.zk:2181`, "zookeeper.root=/shop"},
	} {
		t.Run(name, func(t *testing.T) {
			objs, err := render(t, sets...)
			if err != nil {
				t.Fatal(err)
			}
			if err := dryRun(t, objs); err != nil {
				t.Fatalf("server-side dry run refused:\n%v", err)
			}
			got := kinds(objs)
			for _, want := range []string{"Deployment/user", "Deployment/order", "Service/user", "Service/order"} {
				if !slices.Contains(got, want) {
					t.Errorf("no %s among %v", want, got)
				}
			}
			checkDemoReplicas(t, objs)
			hasRole := slices.Contains(got, "Role/mesh-warren-discovery")
			if hasRole != (name == "kubernetes") {
				t.Errorf("discovery Role rendered: %t, want it only for the kubernetes registry (%v)", hasRole, got)
			}
			if hasEtcd := slices.Contains(got, "StatefulSet/etcd"); hasEtcd != (name == "etcd") {
				t.Errorf("etcd StatefulSet rendered: %t (%v)", hasEtcd, got)
			}
			for _, o := range objs {
				if o.GetKind() == "StatefulSet" && o.GetName() == "etcd" {
					checkEtcd(t, o)
				}
				if o.GetKind() == "Deployment" {
					checkDeployment(t, o, name)
				}
				if o.GetKind() == "Service" && o.GetName() != "etcd" {
					if ip, _, _ := unstructured.NestedString(o.Object, "spec", "clusterIP"); ip != "None" {
						t.Errorf("Service %s: clusterIP %q, want None (headless)", o.GetName(), ip)
					}
					// Ports named by scheme: the kubernetes registry's endpoints.
					ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
					var names []string
					for _, p := range ports {
						names = append(names, fmt.Sprint(p.(map[string]any)["name"]))
					}
					if !slices.Equal(names, []string{"http", "grpc"}) {
						t.Errorf("Service %s: ports %v, want http and grpc", o.GetName(), names)
					}
				}
			}
		})
	}
}

// checkDeployment checks the probes, the shutdown timing, the resources
// and the scrape annotations of one rendered Deployment.
func checkDeployment(t *testing.T, o *unstructured.Unstructured, registry string) {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
		t.Fatal(err)
	}
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	// Readiness is the registration with the kubernetes registry; with
	// another, its registered check would fail on every pod at once while
	// that registry is down, taking the fleet out of its Services.
	readyz := "/readyz?exclude=registered"
	if registry == "kubernetes" {
		readyz = "/readyz"
	}
	switch {
	case c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != readyz:
		t.Errorf("%s: readiness probe %+v, want GET %s", d.Name, c.ReadinessProbe, readyz)
	case c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz":
		t.Errorf("%s: liveness probe %+v, want GET /healthz", d.Name, c.LivenessProbe)
	case c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil:
		t.Errorf("%s: no preStop sleep", d.Name)
	case c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero():
		t.Errorf("%s: no CPU and memory requests: %+v", d.Name, c.Resources.Requests)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["WARREN_REGISTRY"] != registry {
		t.Errorf("%s: WARREN_REGISTRY=%q, want %q", d.Name, env["WARREN_REGISTRY"], registry)
	}
	if registry == "zookeeper" && (env["WARREN_ZOOKEEPER_SERVERS"] != "zk-0.zk:2181,zk-1.zk:2181" || env["WARREN_ZOOKEEPER_ROOT"] != "/shop") {
		t.Errorf("%s: WARREN_ZOOKEEPER_SERVERS=%q WARREN_ZOOKEEPER_ROOT=%q, want zk-0.zk:2181,zk-1.zk:2181 and /shop",
			d.Name, env["WARREN_ZOOKEEPER_SERVERS"], env["WARREN_ZOOKEEPER_ROOT"])
	}
	// The debug listener (pprof, no auth) is off unless metrics.enabled.
	if v, ok := env["WARREN_DEBUG_LISTEN"]; ok {
		t.Errorf("%s: WARREN_DEBUG_LISTEN=%q with the default values, want no debug listener", d.Name, v)
	}
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			t.Errorf("%s: a metrics port (%d) with the default values", d.Name, p.ContainerPort)
		}
	}
	if _, ok := d.Spec.Template.Annotations["prometheus.io/scrape"]; ok {
		t.Errorf("%s: Prometheus scrape annotations with the default values: %v", d.Name, d.Spec.Template.Annotations)
	}
	// The Pod outlives preStop + Warren's grace + drain, so SIGKILL never
	// cuts a drain short.
	grace, err1 := time.ParseDuration(env["WARREN_GRACE"])
	drain, err2 := time.ParseDuration(env["WARREN_DRAIN_TIMEOUT"])
	if err1 != nil || err2 != nil || c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || spec.TerminationGracePeriodSeconds == nil {
		t.Fatalf("%s: shutdown settings missing (grace %q, drain %q)", d.Name, env["WARREN_GRACE"], env["WARREN_DRAIN_TIMEOUT"])
	}
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + grace + drain
	if got := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second; got <= need {
		t.Errorf("%s: terminationGracePeriodSeconds %s, want more than preStop + grace + drain = %s", d.Name, got, need)
	}
}

// A broken value fails validation, naming what is wrong: the chart's
// schema catches a wrong type, the apiserver a value no schema here
// knows.
func TestChart_BrokenValuesFail(t *testing.T) {
	t.Run("replicas two (schema)", func(t *testing.T) {
		_, err := render(t, "services.user.replicas=two")
		if err == nil || !strings.Contains(err.Error(), "replicas") {
			t.Fatalf("render with replicas=two: err = %v, want a failure naming replicas", err)
		}
	})
	t.Run("cpu lots (apiserver)", func(t *testing.T) {
		objs, err := render(t, "defaults.resources.requests.cpu=lots")
		if err != nil {
			t.Fatalf("render: %v (the schema does not know quantities; the apiserver does)", err)
		}
		err = dryRun(t, objs)
		if err == nil || !strings.Contains(err.Error(), "quantit") {
			t.Fatalf("dry run with cpu=lots: err = %v, want the apiserver to refuse the quantity", err)
		}
	})
	t.Run("unknown field (apiserver, strict)", func(t *testing.T) {
		objs, err := render(t)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() == "Deployment" {
				_ = unstructured.SetNestedField(o.Object, int64(3), "spec", "replica")
				break
			}
		}
		if err := dryRun(t, objs); err == nil || !strings.Contains(err.Error(), "replica") {
			t.Fatalf("dry run with a misspelt field: err = %v, want strict validation to name it", err)
		}
	})
}

// checkEtcd checks the demo etcd can write its volume: the image runs as
// 65532, and a freshly formatted volume is root's, so the Pod needs
// fsGroup 65532 (and runs locked down otherwise).
func checkEtcd(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	var ss appsv1.StatefulSet
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ss); err != nil {
		t.Fatal(err)
	}
	psc := ss.Spec.Template.Spec.SecurityContext
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("etcd Pod securityContext %+v, want runAsUser and fsGroup 65532 (the volume must be writable by the image's user)", psc)
	}
	c := ss.Spec.Template.Spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("etcd container securityContext %+v, want a read-only root and no privilege escalation", sc)
	}
	var mounted bool
	for _, m := range c.VolumeMounts {
		mounted = mounted || m.MountPath == "/data"
	}
	if !mounted || !slices.Contains(c.Command, "--data-dir=/data/etcd") {
		t.Errorf("etcd: data dir %v not under the volume mounted at /data (%+v)", c.Command, c.VolumeMounts)
	}
}

// A misspelt or unknown key is refused by the chart's schema, naming it,
// instead of being ignored (etcd.endpoint would leave the services on the
// default etcd:2379); null where the templates need an object is refused
// before a template can trip on it.
func TestChart_SchemaRefusesUnknownKeysAndNull(t *testing.T) {
	for _, tc := range []struct{ set, want string }{
		{"etcd.endpoint=x:2379", "additional properties 'endpoint' not allowed"},
		{"services.user.replica=3", "additional properties 'replica' not allowed"},
		{"registy=etcd", "additional properties 'registy' not allowed"},
		{"consul.adress=c:8500", "additional properties 'adress' not allowed"},
		{"lifecycle.graceSecond=3", "additional properties 'graceSecond' not allowed"},
		{"image.tags=v1", "additional properties 'tags' not allowed"},
		{"metrics.enable=true", "additional properties 'enable' not allowed"},
		{"defaults.resource.requests.cpu=1", "additional properties 'resource' not allowed"},
		{"defaults.resources.request.cpu=1", "additional properties 'request' not allowed"},
		{"zookeeper.server=zk:2181", "additional properties 'server' not allowed"},
		// Helm drops a key set to null: the schema finds it missing.
		{"defaults=null", "missing property 'defaults'"},
		{"metrics=null", "missing property 'metrics'"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			_, err := render(t, tc.set)
			if err == nil {
				t.Fatalf("render with %s succeeded, want the schema to refuse it", tc.set)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render with %s: err = %v, want a schema failure naming %s", tc.set, err, tc.want)
			}
		})
	}
	// A values file with defaults: null, as an operator would write it.
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte("defaults: null\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := renderFlags(t, "-f", file); err == nil || !strings.Contains(err.Error(), "missing property 'defaults'") {
		t.Fatalf("render with a values file setting defaults: null: err = %v, want the schema to refuse it", err)
	}
	// The same keys spelt right pass.
	if _, err := render(t, "etcd.endpoints=x:2379", "services.user.replicas=3", "registry=zookeeper"); err != nil {
		t.Fatalf("render with correct keys: %v", err)
	}
}

// The debug listener serves pprof as well as /metrics, unauthenticated
// and in plain HTTP: it is off by default (checkDeployment), and turning
// it on needs a NetworkPolicy naming who may reach it, unless that is
// explicitly turned off.
func TestChart_DebugListenerOnlyWithNetworkPolicy(t *testing.T) {
	t.Run("enabled without peers fails", func(t *testing.T) {
		_, err := render(t, "metrics.enabled=true")
		if err == nil || !strings.Contains(err.Error(), "metrics.networkPolicy.from") {
			t.Fatalf("render with metrics.enabled and no peers: err = %v, want a failure naming metrics.networkPolicy.from", err)
		}
	})
	t.Run("enabled with peers", func(t *testing.T) {
		objs, err := renderFlags(t, "--set", "metrics.enabled=true", "--set", "metrics.port=9200", "--set-json",
			`metrics.networkPolicy.from=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]`)
		if err != nil {
			t.Fatal(err)
		}
		if err := dryRun(t, objs); err != nil {
			t.Fatalf("server-side dry run refused:\n%v", err)
		}
		var policies int
		for _, o := range objs {
			switch o.GetKind() {
			case "Deployment":
				checkMetricsOn(t, o, 9200, false)
			case "NetworkPolicy":
				policies++
				checkDebugPolicy(t, o)
			}
		}
		if policies != 1 {
			t.Errorf("%d NetworkPolicies, want 1 (%v)", policies, kinds(objs))
		}
	})
	t.Run("enabled with the policy turned off", func(t *testing.T) {
		objs, err := render(t, "metrics.enabled=true", "metrics.networkPolicy.enabled=false", "metrics.profiles=true")
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			switch o.GetKind() {
			case "Deployment":
				checkMetricsOn(t, o, 9100, true)
			case "NetworkPolicy":
				t.Errorf("NetworkPolicy %s rendered with metrics.networkPolicy.enabled=false", o.GetName())
			}
		}
	})
}

// checkMetricsOn checks a Deployment runs the debug listener on port,
// without the profiles unless metrics.profiles, and tells Prometheus
// where it is.
func checkMetricsOn(t *testing.T, o *unstructured.Unstructured, port int32, profiles bool) {
	t.Helper()
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
		t.Fatal(err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	var listen, pprof string
	for _, e := range c.Env {
		switch e.Name {
		case "WARREN_DEBUG_LISTEN":
			listen = e.Value
		case "WARREN_DEBUG_PPROF":
			pprof = e.Value
		}
	}
	if want := fmt.Sprintf(":%d", port); listen != want {
		t.Errorf("%s: WARREN_DEBUG_LISTEN=%q, want %q", d.Name, listen, want)
	}
	if want := fmt.Sprint(profiles); pprof != want {
		t.Errorf("%s: WARREN_DEBUG_PPROF=%q, want %q", d.Name, pprof, want)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == port }) {
		t.Errorf("%s: no container port metrics %d: %+v", d.Name, port, c.Ports)
	}
	a := d.Spec.Template.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != fmt.Sprint(port) || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: scrape annotations %v, want scrape true, port %d, path /metrics", d.Name, a, port)
	}
}

// checkDebugPolicy checks the NetworkPolicy selects every service Pod of
// the release, lets everyone reach http and grpc, and only the
// configured peers reach the debug port.
func checkDebugPolicy(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	var np networkingv1.NetworkPolicy
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &np); err != nil {
		t.Fatal(err)
	}
	sel := np.Spec.PodSelector.MatchLabels
	if sel["app.kubernetes.io/instance"] != "mesh" || sel["app.kubernetes.io/part-of"] != "warren" || len(np.Spec.PodSelector.MatchExpressions) > 0 {
		t.Errorf("NetworkPolicy selects %+v, want the release's warren Pods", np.Spec.PodSelector)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("NetworkPolicy policyTypes %v, want Ingress only", np.Spec.PolicyTypes)
	}
	open := map[string]bool{}    // ports anyone may reach
	limited := map[string]bool{} // ports only peers may reach
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil {
				t.Errorf("NetworkPolicy rule %+v opens every port", r)
				continue
			}
			if len(r.From) == 0 {
				open[p.Port.String()] = true
			} else {
				limited[p.Port.String()] = true
				for _, f := range r.From {
					if f.NamespaceSelector == nil || f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
						t.Errorf("debug port peer %+v, want the configured monitoring namespace", f)
					}
				}
			}
		}
		if len(r.Ports) == 0 {
			t.Errorf("NetworkPolicy rule %+v applies to every port", r)
		}
	}
	if !open["http"] || !open["grpc"] || open["metrics"] || !limited["metrics"] {
		t.Errorf("NetworkPolicy: open to all %v, to peers only %v; want http and grpc open, metrics to peers only", open, limited)
	}
}

// checkDemoReplicas checks the demo's user and order, which keep their
// data in the Pod's memory, run one replica each (two would be two
// separate stores: reads 404 and orders 422 depending on the Pod), so
// they get no PodDisruptionBudget.
func checkDemoReplicas(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		switch {
		case o.GetKind() == "Deployment" && (o.GetName() == "user" || o.GetName() == "order"):
			if n, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "replicas"); fmt.Sprint(n) != "1" {
				t.Errorf("Deployment %s: %v replicas by default, want 1 (its data is in the Pod's memory)", o.GetName(), n)
			}
		case o.GetKind() == "PodDisruptionBudget":
			t.Errorf("PodDisruptionBudget %s rendered for a one-replica service", o.GetName())
		}
	}
}

// A service scaled past one replica gets its PodDisruptionBudget.
func TestChart_ScaledServiceGetsAPodDisruptionBudget(t *testing.T) {
	objs, err := render(t, "services.user.replicas=3")
	if err != nil {
		t.Fatal(err)
	}
	if err := dryRun(t, objs); err != nil {
		t.Fatalf("server-side dry run refused:\n%v", err)
	}
	if got := kinds(objs); !slices.Contains(got, "PodDisruptionBudget/user") || slices.Contains(got, "PodDisruptionBudget/order") {
		t.Errorf("objects %v, want a PodDisruptionBudget for user (3 replicas) only", got)
	}
}

// The kubernetes registry skips an endpoint whose weight annotation it
// cannot read, so `weight=heavy` took every user Pod out of discovery while
// the Deployment looked healthy (report j47a): the schema refuses it. A
// number, which --set makes of `weight=5`, is accepted and rendered as the
// string an annotation must be; the apiserver takes the result.
func TestChart_WeightAnnotationIsAPositiveInteger(t *testing.T) {
	for _, bad := range []string{"heavy", "0", "-3", "1.5"} {
		if _, err := render(t, `services.user.annotations.warren\.dev/weight=`+bad); err == nil || !strings.Contains(err.Error(), "warren.dev~1weight") { // a JSON pointer: / is ~1
			t.Errorf("weight=%s: err = %v, want the schema to refuse it, naming the annotation", bad, err)
		}
	}
	objs, err := render(t, `services.user.annotations.warren\.dev/weight=5`, `services.user.annotations.meta\.warren\.dev/team=pay`)
	if err != nil {
		t.Fatalf("weight=5: %v", err)
	}
	found := false
	for _, o := range objs {
		if o.GetKind() != "Deployment" || o.GetName() != "user" {
			continue
		}
		ann, _, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations")
		found = ann["warren.dev/weight"] == "5" && ann["meta.warren.dev/team"] == "pay"
		if !found {
			t.Errorf("user Pod annotations %v, want weight \"5\" and the meta key", ann)
		}
	}
	if !found {
		t.Fatal("no user Deployment with the annotations")
	}
	if err := dryRun(t, objs); err != nil {
		t.Fatalf("dry run: %v", err)
	}
}
