package kubernetes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
)

// A token the apiserver does not accept (401) says so, not what to grant:
// no Role fixes authentication (report j56a F4: a mistyped token got the
// RBAC hint of a 403). `warren ls` (Services) and Register both.
func TestRegistry_UnauthorizedSaysTheCredentialsAreNotAccepted(t *testing.T) {
	rc := rest.CopyConfig(testCluster(t).Config())
	rc.BearerToken = "not-a-token-of-this-cluster"
	r, err := kubernetes.New(context.Background(), kubernetes.WithRESTConfig(rc), kubernetes.WithNamespace(kubetest.Namespace),
		kubernetes.WithInitialWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "Unauthorized") || !strings.Contains(err.Error(), "does not accept these credentials") ||
			strings.Contains(err.Error(), "needs get, list and watch") || strings.Contains(err.Error(), "Role") {
			t.Errorf("%s: %v; want the 401 and that the credentials are not accepted, no RBAC hint", what, err)
		}
		t.Logf("%s: %v", what, err)
	}
	_, err = r.Services(ctxT(t, time.Minute))
	check("Services", err)
	err = r.Register(ctxT(t, time.Minute), registry.Instance{ID: "ua-1", Name: "ua", Endpoints: []string{"http://127.0.0.1:1"}})
	check("Register", err)
}
