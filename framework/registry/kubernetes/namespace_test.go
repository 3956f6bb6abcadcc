package kubernetes_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
)

// kubeconfig writes a kubeconfig whose current context has namespace ns
// ("" names none). The server is never dialled: New does not call it.
func kubeconfig(t *testing.T, ns string) string {
	t.Helper()
	ctxNS := ""
	if ns != "" {
		ctxNS = ", namespace: " + ns
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters:
- {name: c, cluster: {server: "https://127.0.0.1:1"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: other, context: {cluster: c, user: u, namespace: not-this-one}}
- {name: mine, context: {cluster: c, user: u`+ctxNS+`}}
current-context: mine
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Out of the cluster with a kubeconfig, the namespace is its current
// context's, as kubectl's; --kubernetes-namespace still wins.
func TestNew_NamespaceFollowsTheKubeconfigContext(t *testing.T) {
	for _, tc := range []struct {
		name, ctxNS string
		opts        []kubernetes.Option
		want        string
	}{
		{"context's", "team-a", nil, "team-a"},
		{"context names none", "", nil, "default"},
		{"flag wins", "team-a", []kubernetes.Option{kubernetes.WithNamespace("team-b")}, "team-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := kubernetes.New(context.Background(), append([]kubernetes.Option{kubernetes.WithKubeconfig(kubeconfig(t, tc.ctxNS))}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got := r.Namespace(); got != tc.want {
				t.Errorf("namespace %q, want %q", got, tc.want)
			}
		})
	}
	// Through the backend's flags, as `warren ls` and services open it.
	s := parseBackend(t, "--kubernetes-kubeconfig", kubeconfig(t, "team-c"))
	reg, err := s.Open(context.Background(), registry.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	if got := reg.(*kubernetes.Registry).Namespace(); got != "team-c" {
		t.Errorf("backend: namespace %q, want team-c", got)
	}
}

// A list the apiserver refuses (no RBAC Role) is reported as such by
// Services and by an instancer's error event, not as a bare "context
// deadline exceeded".
func TestRegistry_RefusedListSaysForbidden(t *testing.T) {
	rc := rest.CopyConfig(testCluster(t).Config())
	rc.Impersonate = rest.ImpersonationConfig{UserName: "warren-test-no-rights"} // RBAC grants it nothing
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(rc), kubernetes.WithNamespace(kubetest.Namespace),
		kubernetes.WithInitialWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	_, err = r.Services(ctxT(t, 3*time.Second))
	if err == nil || !strings.Contains(err.Error(), "is forbidden") || !strings.Contains(err.Error(), "needs get, list and watch") ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Services: %v; want the apiserver's refusal, what to grant, and the deadline", err)
	}
	t.Logf("Services: %v", err)

	ins, err := r.Instancer(ctxT(t, 10*time.Second), "user")
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ev := ins.(*kubernetes.Instancer).State()
		if ev.Err != nil && strings.Contains(ev.Err.Error(), "is forbidden") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("instancer event %v; want the apiserver's refusal", ev.Err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
