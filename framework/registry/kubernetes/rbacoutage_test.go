package kubernetes_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/kubernetes/kubetest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// An account that may read Services and EndpointSlices but not Pods
// cannot list one of the three: that is one outage in the log, one
// warning, and no "readable again" while the Pods stay refused, however
// often the Services change. Before, any change of a resource it could
// read ended the outage in the log ("readable again") and the next
// refused list of Pods warned again: a pair of lines at every retry.
func TestRegistry_AResourceTheAccountMayNotReadIsOneOutageInTheLog(t *testing.T) {
	cs := client(t)
	ctx := ctxT(t, 2*time.Minute)
	ns := kubetest.Namespace
	name := uniq("nopods")
	del := metav1.DeleteOptions{}
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().ServiceAccounts(ns).Delete(ctx, name, del) })
	if _, err := cs.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().Roles(ns).Delete(ctx, name, del) })
	if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: ns}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.RbacV1().RoleBindings(ns).Delete(ctx, name, del) })
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := rest.CopyConfig(testCluster(t).Config())
	rc.BearerToken = tok.Status.Token
	logs := &syncbuf.Buffer{}
	r, err := kubernetes.New(ctx, kubernetes.WithRESTConfig(rc), kubernetes.WithNamespace(ns),
		kubernetes.WithLogger(log.NewLogfmtLogger(logs)), kubernetes.WithInitialWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in, err := r.Instancer(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	// A Service created every 200 ms for 15 s: client-go retries the
	// refused list of Pods 3-5 times meanwhile.
	for i := range 75 {
		svc := fmt.Sprintf("%s-s%d", name, i)
		_, err := cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cs.CoreV1().Services(ns).Delete(ctx, svc, del) })
		time.Sleep(200 * time.Millisecond)
	}
	out := logs.String()
	warned := strings.Count(out, `level=warn msg="cannot read Kubernetes`)
	over := strings.Count(out, "readable again")
	if warned != 1 || over != 0 {
		t.Fatalf("%d warnings and %d lines saying it is over, with Pods refused throughout; want 1 and 0:\n%s", warned, over, out)
	}
}
