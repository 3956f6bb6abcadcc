package regcli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

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
