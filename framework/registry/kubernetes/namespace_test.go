package kubernetes_test

import (
	"context"
	"errors"
	"github.com/go-kit/log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/internal/syncbuf"
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
	logs := &syncbuf.Buffer{}
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(rc), kubernetes.WithNamespace(kubetest.Namespace),
		kubernetes.WithInitialWait(200*time.Millisecond), kubernetes.WithLogger(log.NewLogfmtLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// The deadline bounds a failing test: the refusal ends the wait at
	// once (warren ls took its whole 10 s to report it, report j47a).
	sctx := ctxT(t, time.Minute)
	_, err = r.Services(sctx)
	if err == nil || !strings.Contains(err.Error(), "is forbidden") || !strings.Contains(err.Error(), "needs get, list and watch") ||
		sctx.Err() != nil {
		t.Errorf("Services: %v; want the apiserver's refusal and what to grant, before the deadline", err)
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
	// client-go lists again every second or so, per informer: the refusal
	// is one warning, the retries debug lines (report j47a: a warning per
	// retry and informer).
	deadline = time.Now().Add(30 * time.Second)
	for strings.Count(logs.String(), `level=debug msg="cannot read Kubernetes`) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 retries logged in 30s:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), `level=warn msg="cannot read Kubernetes`); n != 1 {
		t.Fatalf("%d warnings of the refusal, want 1:\n%s", n, logs)
	}
}

// An instance whose account may not read its namespace is not registered
// (so /readyz, and the Pod, stay not ready): the refusal ends Register at
// once with what to grant, rather than let the Pod go ready and discover
// nothing (report j47a: a namespace typo replaced working Pods in a
// rollout). The same registry with rights registers.
func TestRegister_RefusedReadIsNotReady(t *testing.T) {
	inst := registry.Instance{ID: "rr-1", Name: "rr", Endpoints: []string{"http://127.0.0.1:1"}}
	rc := rest.CopyConfig(testCluster(t).Config())
	rc.Impersonate = rest.ImpersonationConfig{UserName: "warren-test-no-rights"}
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(rc), kubernetes.WithNamespace(kubetest.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := ctxT(t, time.Minute) // bounds a failing test only: a refusal must end Register on the first answer
	err = r.Register(ctx, inst)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "is forbidden") ||
		!strings.Contains(err.Error(), `cannot read EndpointSlices in namespace "`+kubetest.Namespace+`"`) {
		t.Fatalf("Register = %v; want the refusal at once, naming the namespace", err)
	}
	if st := r.Status(); st.State == registry.StateRegistered || !strings.Contains(st.LastError, "is forbidden") {
		t.Fatalf("Status %+v after a refused read; want not registered, the refusal as its last error", st)
	}

	ok, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(testCluster(t).Config()), kubernetes.WithNamespace(kubetest.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer ok.Close()
	if err := ok.Register(ctxT(t, time.Minute), inst); err != nil {
		t.Fatalf("Register with rights: %v", err)
	}
	if st := ok.Status(); st.State != registry.StateRegistered {
		t.Fatalf("Status %+v, want registered", st)
	}
}

// An apiserver that does not answer is waited for, as an unreachable etcd
// is: Register returns only when its context ends, saying why, and the
// status names the failure meanwhile.
func TestRegister_WaitsForAnApiserverThatDoesNotAnswer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // connections refused from now on
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(&rest.Config{Host: "http://" + addr}), kubernetes.WithNamespace("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	err = r.Register(ctx, registry.Instance{ID: "w-1", Name: "w", Endpoints: []string{"http://127.0.0.1:1"}})
	if err == nil || ctx.Err() == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Register = %v (context: %v); want it to wait until the context ended, naming the refused connection", err, ctx.Err())
	}
	if st := r.Status(); st.State == registry.StateRegistered || !strings.Contains(st.LastError, "connection refused") {
		t.Fatalf("Status %+v; want not registered, the refused connection as its last error", st)
	}
}

// A list in a missing namespace answers an empty list, so NamespaceExists
// asks for the Namespace: 404 is "does not exist"; a refusal (an account
// that may not get namespaces, as the chart's Role) is an error, not a
// "no" (report j56a: --kubernetes-namespace=shopp read as empty).
func TestRegistry_NamespaceExists(t *testing.T) {
	open := func(rc *rest.Config, ns string) *kubernetes.Registry {
		r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(rc), kubernetes.WithNamespace(ns))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	admin := testCluster(t).Config()
	if ok, err := open(admin, kubetest.Namespace).NamespaceExists(ctxT(t, wait)); !ok || err != nil {
		t.Errorf("namespace %s: exists %t, %v; want true", kubetest.Namespace, ok, err)
	}
	if ok, err := open(admin, "shopp").NamespaceExists(ctxT(t, wait)); ok || err != nil {
		t.Errorf("namespace shopp: exists %t, %v; want false, no error", ok, err)
	}
	rc := rest.CopyConfig(admin)
	rc.Impersonate = rest.ImpersonationConfig{UserName: "warren-test-no-rights"}
	if ok, err := open(rc, "shopp").NamespaceExists(ctxT(t, wait)); ok || err == nil || !strings.Contains(err.Error(), "forbidden") {
		t.Errorf("namespace shopp, no rights: exists %t, %v; want the refusal as the error", ok, err)
	}
}
