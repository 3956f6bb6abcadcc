package kubernetes_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
)

// notInACluster makes New see no Pod service account, with $KUBECONFIG
// set to kc ("" unsets it) and $HOME an empty directory.
func notInACluster(t *testing.T, kc string) (home string) {
	t.Helper()
	kubernetes.SetInClusterConfig(t, func() (*rest.Config, error) { return nil, rest.ErrNotInCluster })
	t.Setenv("KUBECONFIG", kc)
	home = t.TempDir()
	t.Setenv("HOME", home)
	return home
}

// servicesAnswer asks the Registry for the Services of the test cluster:
// it reached the apiserver with the kubeconfig's credentials.
func servicesAnswer(t *testing.T, r *kubernetes.Registry) {
	t.Helper()
	if _, err := r.Services(ctxT(t, wait)); err != nil {
		t.Fatalf("Services: %v; want the test apiserver's answer", err)
	}
}

// Out of a cluster with no --kubernetes-kubeconfig, the kubeconfig is
// found as kubectl finds it: $KUBECONFIG (a path list), else
// ~/.kube/config (report j56a F2: `warren ls` from a workstation failed
// "not in a cluster and no kubeconfig given").
func TestNew_FindsTheKubeconfigAsKubectl(t *testing.T) {
	real := testCluster(t).Kubeconfig()

	t.Run("KUBECONFIG", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing")
		notInACluster(t, missing+string(os.PathListSeparator)+real)
		// Through the backend's flags, as `warren ls` opens it.
		reg, err := parseBackend(t).Open(context.Background(), registry.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		r := reg.(*kubernetes.Registry)
		if got := r.Namespace(); got != kubetest.Namespace {
			t.Errorf("namespace %q, want the context's %q", got, kubetest.Namespace)
		}
		servicesAnswer(t, r)
	})

	t.Run("KUBECONFIG's context namespace", func(t *testing.T) {
		notInACluster(t, kubeconfig(t, "team-k"))
		r, err := kubernetes.New(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := r.Namespace(); got != "team-k" {
			t.Errorf("namespace %q, want the context's team-k", got)
		}
	})

	t.Run("~/.kube/config", func(t *testing.T) {
		home := notInACluster(t, "")
		b, err := os.ReadFile(real)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(home, ".kube"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".kube", "config"), b, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := kubernetes.New(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		servicesAnswer(t, r)
	})

	t.Run("none: the error names the places", func(t *testing.T) {
		home := notInACluster(t, "")
		_, err := kubernetes.New(context.Background())
		if err == nil {
			t.Fatal("New found an apiserver with no kubeconfig anywhere")
		}
		for _, want := range []string{"not in a cluster", "KUBERNETES_SERVICE_HOST", "--kubernetes-kubeconfig not given",
			"$KUBECONFIG unset", filepath.Join(home, ".kube", "config")} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("New: %v\nwant it to name %q", err, want)
			}
		}
		kc := filepath.Join(t.TempDir(), "nothing-here")
		t.Setenv("KUBECONFIG", kc)
		if _, err := kubernetes.New(context.Background()); err == nil || !strings.Contains(err.Error(), "$KUBECONFIG ("+kc+")") {
			t.Errorf("New with $KUBECONFIG naming no file: %v; want it named", err)
		}
	})

	t.Run("the flag wins", func(t *testing.T) {
		notInACluster(t, real)
		r, err := kubernetes.New(context.Background(), kubernetes.WithKubeconfig(kubeconfig(t, "team-f")))
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := r.Namespace(); got != "team-f" {
			t.Errorf("namespace %q, want the flag's kubeconfig's team-f", got)
		}
	})

	// In a Pod the service account wins over $KUBECONFIG: the Pod's
	// namespace, not the kubeconfig context's.
	t.Run("in-cluster wins in a Pod", func(t *testing.T) {
		notInACluster(t, kubeconfig(t, "team-k"))
		used := false
		kubernetes.SetInClusterConfig(t, func() (*rest.Config, error) { used = true; return testCluster(t).Config(), nil })
		r, err := kubernetes.New(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if got := r.Namespace(); !used || got == "team-k" {
			t.Errorf("in-cluster config used: %v, namespace %q; want the service account's, not $KUBECONFIG's team-k", used, got)
		}
		servicesAnswer(t, r)
	})
}
