package kubernetes

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// Name is the Kubernetes backend's name: --registry=kubernetes.
const Name = "kubernetes"

// Backend returns the Kubernetes backend for a main's list of registries
// (bootstrap.WithRegistries). Its flags, each also a WARREN_KUBERNETES_…
// variable: --kubernetes-kubeconfig (empty: in-cluster, else $KUBECONFIG,
// else ~/.kube/config), --kubernetes-namespace (empty: the kubeconfig
// context's, else the Pod's own), --kubernetes-ports
// (port names that become endpoints) and --kubernetes-max-hold.
func Backend() registry.Backend {
	return registry.Backend{
		Name:  Name,
		Usage: "Kubernetes (EndpointSlices; the kubelet registers through /readyz)",
		Bind:  bindFlags,
	}
}

type settings struct {
	kubeconfig string
	namespace  string
	ports      []string
	maxHold    time.Duration
}

func bindFlags(fs *flag.FlagSet) registry.Settings {
	s := &settings{ports: append([]string(nil), DefaultSchemes...), maxHold: DefaultMaxHold}
	fs.StringVar(&s.kubeconfig, "kubernetes-kubeconfig", s.kubeconfig, "kubeconfig file of the cluster (empty: the Pod's service account in a cluster, else $KUBECONFIG, else ~/.kube/config, as kubectl)")
	fs.StringVar(&s.namespace, "kubernetes-namespace", s.namespace, "namespace whose Services are discovered (empty: with a kubeconfig its context's namespace, as kubectl; else the Pod's own)")
	fs.Var(registry.ListFlag{P: &s.ports}, "kubernetes-ports", "comma-separated Service port names that become endpoints, each under its name as scheme")
	fs.DurationVar(&s.maxHold, "kubernetes-max-hold", s.maxHold, "longest wait for EndpointSlices to agree with their Pods before serving them as they are")
	return s
}

func (s *settings) Validate() error {
	switch {
	case len(s.ports) == 0:
		return fmt.Errorf("--kubernetes-ports is empty")
	case s.maxHold <= 0:
		return fmt.Errorf("--kubernetes-max-hold %s: must be positive", s.maxHold)
	case s.namespace != "" && !registry.ValidName(s.namespace):
		return fmt.Errorf("--kubernetes-namespace %q: not a namespace name", s.namespace)
	}
	for _, p := range s.ports {
		if _, _, _, err := registry.ParseEndpoint(p + "://127.0.0.1:1"); err != nil || strings.ToLower(p) != p {
			return fmt.Errorf("--kubernetes-ports: %q is not a port name usable as a scheme", p)
		}
	}
	return nil
}

func (s *settings) Open(ctx context.Context, o registry.OpenOptions) (registry.Registry, error) {
	r, err := New(ctx,
		WithKubeconfig(s.kubeconfig),
		WithNamespace(s.namespace),
		WithSchemes(s.ports...),
		WithMaxHold(s.maxHold),
		WithLogger(o.Logger),
		WithObserver(o.Observer))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// String shows the settings.
func (s *settings) String() string {
	return fmt.Sprintf("kubernetes{kubeconfig=%q namespace=%q ports=%v max-hold=%s}", s.kubeconfig, s.namespace, s.ports, s.maxHold)
}
