package regcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// kubeWait bounds each wait on the control plane (a loaded machine).
const kubeWait = 60 * time.Second

// ls and watch against a real kube-apiserver and EndpointSlice controller
// (kubetest, one control plane for the subtests).
func TestKubernetes_LsAndWatchAgainstARealApiserver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := kubetest.Start(ctx)
	if err != nil {
		t.Fatalf("kubernetes tests need a control plane: %v", err) // make test builds it (kube-deps)
	}
	defer c.Close()
	t.Run("SkippedEndpointIsNamedWithItsReason", func(t *testing.T) { skippedEndpointIsNamed(t, c) })
	t.Run("MissingNamespaceIsSaid", func(t *testing.T) { missingNamespaceIsSaid(t, c) })
}

var kubeBackends = registry.Backends{kubernetes.Backend()}

// kubeArgs are the registry flags of a command reading namespace ns with
// kubeconfig kc, then more.
func kubeArgs(kc, ns string, more ...string) []string {
	return append([]string{"--registry", "kubernetes", "--kubernetes-kubeconfig", kc, "--kubernetes-namespace", ns}, more...)
}

// A Ready Pod that discovery skips for an annotation it cannot read
// (report j56a F5: set outside the chart, e.g. warren.dev/weight=heavy) is
// named with the reason by ls (on stderr, the table keeps only instances
// callers get) and by watch, after its withdraw line.
func skippedEndpointIsNamed(t *testing.T, c *kubetest.Cluster) {
	k, err := c.Kubelet()
	if err != nil {
		t.Fatal(err)
	}
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(c.Config()), kubernetes.WithNamespace(kubetest.Namespace), kubernetes.WithKubelet(k))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	good := registry.Instance{ID: "skipme-1", Name: "skipme", Endpoints: []string{"http://192.0.2.10:8080"}}
	bad := registry.Instance{ID: "skipme-2", Name: "skipme", Endpoints: []string{"http://192.0.2.11:8080"}}
	rctx, rcancel := context.WithTimeout(context.Background(), kubeWait)
	defer rcancel()
	for _, inst := range []registry.Instance{good, bad} {
		if err := r.Register(rctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	out := &syncbuf.Buffer{}
	stop := startWatch(t, func(ctx context.Context, e Env) error {
		e.Backends = kubeBackends
		return Watch(ctx, e, kubeArgs(c.Kubeconfig(), kubetest.Namespace, "skipme"))
	}, out)
	defer stop()
	waitFor(t, out, "both present", func(s string) bool {
		return strings.Contains(s, "present    skipme  skipme-1") && strings.Contains(s, "present    skipme  skipme-2")
	})

	patch := []byte(`{"metadata":{"annotations":{"` + kubernetes.AnnotationWeight + `":"heavy"}}}`)
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(kubetest.Namespace).Patch(rctx, bad.ID, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	reason := `annotation warren.dev/weight="heavy": want a positive integer`
	waitFor(t, out, "watch's skipped line", func(s string) bool {
		return strings.Contains(s, "skipped    skipme  skipme-2  "+reason)
	})

	var stdout, stderr bytes.Buffer
	lctx, lcancel := context.WithTimeout(context.Background(), kubeWait)
	defer lcancel()
	if err := Ls(lctx, Env{Stdout: &stdout, Stderr: &stderr, Backends: kubeBackends}, kubeArgs(c.Kubeconfig(), kubetest.Namespace, "--timeout", "30s", "skipme")); err != nil {
		t.Fatalf("ls: %v\nstderr: %s", err, &stderr)
	}
	if !strings.Contains(stdout.String(), "skipme-1") || strings.Contains(stdout.String(), "skipme-2") {
		t.Errorf("ls table:\n%s\nwant skipme-1 only (a skipped endpoint is no instance)", &stdout)
	}
	if want := "warren ls: skipme skipme-2 skipped (ready, not served to callers): " + reason; !strings.Contains(stderr.String(), want) {
		t.Errorf("ls stderr:\n%s\nwant %q", &stderr, want)
	}
	t.Logf("watch:\n%s\nls:\n%s%s", out, &stdout, &stderr)
}

// waitFor polls out until ok says yes, for at most kubeWait.
func waitFor(t *testing.T, out *syncbuf.Buffer, what string, ok func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(kubeWait)
	for !ok(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v:\n%s", what, kubeWait, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A list in a namespace that does not exist answers an empty list, as one
// in an empty namespace does; ls tells them apart by a get of the
// Namespace (report j56a: --kubernetes-namespace=shopp printed only
// "nothing registered"). An account that may not get namespaces (the
// chart's Role grants no such thing) gets what it got before: no guess.
func missingNamespaceIsSaid(t *testing.T, c *kubetest.Cluster) {
	cs, err := c.Clientset()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), kubeWait)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "empty"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// reader may list what discovery lists, in every namespace, and may
	// not get namespaces.
	if _, err := cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "warren-reader"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "warren-reader"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "warren-reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "warren-reader"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	reader := filepath.Join(t.TempDir(), "kubeconfig")
	// The admin token, impersonating warren-reader (kubectl --as).
	if err := os.WriteFile(reader, []byte(strings.Replace(string(admin), "    token:", "    as: warren-reader\n    token:", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kc, ns string
		services     []string
		want, wantNo string
	}{
		{"missing", c.Kubeconfig(), "shopp", nil, `nothing to list: the kubernetes registry: namespace "shopp" does not exist`, "nothing registered"},
		{"missing, a service named", c.Kubeconfig(), "shopp", []string{"user"}, `no instance of user in the kubernetes registry: namespace "shopp" does not exist`, ""},
		{"empty", c.Kubeconfig(), "empty", nil, `warren ls: nothing registered in the kubernetes registry, namespace "empty"`, "does not exist"},
		{"missing, may not get namespaces", reader, "shopp", nil, `warren ls: nothing registered in the kubernetes registry, namespace "shopp"`, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			lctx, lcancel := context.WithTimeout(context.Background(), kubeWait)
			defer lcancel()
			err := Ls(lctx, Env{Stdout: &stdout, Stderr: &stderr, Backends: kubeBackends}, kubeArgs(tc.kc, tc.ns, append([]string{"--timeout", "30s"}, tc.services...)...))
			got := stderr.String()
			if err != nil {
				got += err.Error()
			}
			if !strings.Contains(got, tc.want) || (tc.wantNo != "" && strings.Contains(got, tc.wantNo)) {
				t.Fatalf("ls said %q; want %q (and not %q)", got, tc.want, tc.wantNo)
			}
			// A namespace known not to exist is an error (exit 1, or 3
			// with a service named); an empty or unknowable one is not.
			if wantErr := strings.HasPrefix(tc.name, "missing") && tc.kc == c.Kubeconfig(); (err != nil) != wantErr {
				t.Fatalf("ls returned %v; want an error: %v", err, wantErr)
			}
			t.Logf("%s", got)
		})
	}
}
