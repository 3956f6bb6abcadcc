package regcli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
)

// A registry that cannot be opened is named once, not "kubernetes:
// kubernetes registry: …".
func TestLs_OpenErrorNamesTheBackendOnce(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster, whatever runs the test
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	var out, errOut bytes.Buffer
	err := Ls(context.Background(), Env{Stdout: &out, Stderr: &errOut, Backends: registry.Backends{kubernetes.Backend()}},
		[]string{"--registry", "kubernetes", "--timeout", "5s"})
	if err == nil || strings.Count(err.Error(), "kubernetes registry") != 1 || !strings.Contains(err.Error(), "not in a cluster") {
		t.Fatalf("err = %v; want one \"kubernetes registry\" and the cause", err)
	}
}

// `warren ls --registry kubernetes` with a kubeconfig lists the namespace
// of its current context, as kubectl does, and when the listing fails it
// says why (here: nothing listens) instead of "context deadline exceeded".
func TestLs_KubernetesUsesTheContextNamespaceAndSaysWhyListingFailed(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	// Port 1 of loopback: refused at once, never served.
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters:
- {name: c, cluster: {server: "https://127.0.0.1:1"}}
users:
- {name: u, user: {token: t}}
contexts:
- {name: mine, context: {cluster: c, user: u, namespace: team-a}}
current-context: mine
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := Ls(ctx, Env{Stdout: &out, Stderr: &errOut, Backends: registry.Backends{kubernetes.Backend()}},
		[]string{"--registry", "kubernetes", "--kubernetes-kubeconfig", kc, "--timeout", "2s"})
	if err == nil || !strings.Contains(err.Error(), `namespace "team-a"`) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v; want the context's namespace team-a and the cause", err)
	}
}
