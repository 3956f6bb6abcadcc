package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-kit/log"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/homedir"

	"github.com/warren-mesh/warren/framework/registry"
)

// Defaults.
const (
	// DefaultMaxHold bounds how long an instancer waits for a service's
	// EndpointSlices to agree with its Pods before it serves the slices as
	// they are (see the package doc, "Ordered delivery").
	DefaultMaxHold = 10 * time.Second
	// DefaultInitialWait bounds how long Instancer waits for the first
	// full read before it returns.
	DefaultInitialWait = 3 * time.Second
	// DefaultCloseTimeout bounds the Kubelet calls Close makes to take
	// every registration out of rotation.
	DefaultCloseTimeout = 3 * time.Second
)

// DefaultSchemes are the EndpointSlice port names that become endpoints,
// each under the scheme of its name: a port named "grpc" is the
// instance's grpc:// endpoint. They are the transports Warren serves.
var DefaultSchemes = []string{"http", "https", "grpc", "grpcs"}

// serviceAccountNamespace is where a Pod finds its own namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Option configures a Registry.
type Option func(*config)

type config struct {
	rest         *rest.Config
	kubeconfig   string
	loading      *clientcmd.ClientConfigLoadingRules // the kubeconfig restConfig used, if any
	namespace    string
	schemes      []string
	kubelet      Kubelet
	logger       log.Logger
	observer     registry.Observer
	maxHold      time.Duration
	initialWait  time.Duration
	closeTimeout time.Duration
}

func defaultConfig() config {
	return config{
		schemes:      DefaultSchemes,
		logger:       log.NewNopLogger(),
		observer:     registry.NopObserver{},
		maxHold:      DefaultMaxHold,
		initialWait:  DefaultInitialWait,
		closeTimeout: DefaultCloseTimeout,
	}
}

// WithRESTConfig sets how to reach the apiserver. Default: WithKubeconfig's
// file, else the in-cluster configuration (the Pod's service account),
// else kubectl's default kubeconfig ($KUBECONFIG, else ~/.kube/config).
func WithRESTConfig(c *rest.Config) Option { return func(cfg *config) { cfg.rest = c } }

// WithKubeconfig reads the apiserver address and credentials from a
// kubeconfig file (its current context), for processes outside the
// cluster. Ignored when WithRESTConfig is given.
func WithKubeconfig(path string) Option { return func(cfg *config) { cfg.kubeconfig = path } }

// WithNamespace sets the namespace whose Services are discovered. Default:
// with a kubeconfig (WithKubeconfig's, or the default one out of a
// cluster), its current context's namespace (as kubectl does,
// "default" when the context names none); else the Pod's own namespace
// (from its service account), else "default".
func WithNamespace(ns string) Option { return func(cfg *config) { cfg.namespace = ns } }

// WithSchemes sets the port names that become endpoints (default
// DefaultSchemes). A Service port named otherwise (metrics, debug) is not
// an endpoint of the instance.
func WithSchemes(schemes ...string) Option { return func(cfg *config) { cfg.schemes = schemes } }

// WithKubelet sets what Register and Deregister tell about readiness
// (see Kubelet). Default: nothing; the kubelet probes /readyz.
func WithKubelet(k Kubelet) Option { return func(cfg *config) { cfg.kubelet = k } }

// WithLogger sets the logger (default: discard).
func WithLogger(l log.Logger) Option {
	return func(cfg *config) {
		if l != nil {
			cfg.logger = l
		}
	}
}

// WithObserver sets the observer of the instancers (default: none).
func WithObserver(o registry.Observer) Option {
	return func(cfg *config) {
		if o != nil {
			cfg.observer = o
		}
	}
}

// WithMaxHold sets how long an instancer holds its last set while a
// service's EndpointSlices and Pods disagree (default DefaultMaxHold).
func WithMaxHold(d time.Duration) Option { return func(cfg *config) { cfg.maxHold = d } }

// WithCloseTimeout bounds the Kubelet calls Close makes (default
// DefaultCloseTimeout).
func WithCloseTimeout(d time.Duration) Option { return func(cfg *config) { cfg.closeTimeout = d } }

// WithInitialWait bounds how long Instancer waits for the first read
// (default DefaultInitialWait).
func WithInitialWait(d time.Duration) Option { return func(cfg *config) { cfg.initialWait = d } }

func (c *config) validate() error {
	switch {
	case c.maxHold <= 0:
		return fmt.Errorf("kubernetes registry: max hold %s: must be positive", c.maxHold)
	case c.initialWait < 0:
		return fmt.Errorf("kubernetes registry: initial wait %s: must not be negative", c.initialWait)
	case len(c.schemes) == 0:
		return fmt.Errorf("kubernetes registry: no port names to serve")
	}
	for _, s := range c.schemes {
		if _, _, _, err := registry.ParseEndpoint(s + "://127.0.0.1:1"); err != nil {
			return fmt.Errorf("kubernetes registry: port name %q is not a scheme", s)
		}
	}
	return nil
}

// inClusterConfig is rest.InClusterConfig; the tests replace it to act
// as a Pod.
var inClusterConfig = rest.InClusterConfig

// restConfig resolves how to reach the apiserver, in this order:
// WithRESTConfig; WithKubeconfig (--kubernetes-kubeconfig); the Pod's
// service account (in-cluster); else client-go's default loading rules,
// as kubectl's: the files of $KUBECONFIG (a path list, merged), else
// ~/.kube/config. In-cluster comes before $KUBECONFIG and ~/.kube/config
// (kubectl tries it last): a workload in a Pod acts as its
// ServiceAccount, which the chart's Role is written for, and a
// KUBECONFIG inherited from an image or a shell does not silently change
// who it is. The flag stays the way to choose another identity.
func (c *config) restConfig() (*rest.Config, error) {
	switch {
	case c.rest != nil:
		return rest.CopyConfig(c.rest), nil
	case c.kubeconfig != "":
		c.loading = &clientcmd.ClientConfigLoadingRules{ExplicitPath: c.kubeconfig}
		rc, err := c.clientConfig().ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes registry: kubeconfig %s: %w", c.kubeconfig, err)
		}
		return rc, nil
	}
	rc, inErr := inClusterConfig()
	if inErr == nil {
		return rc, nil
	}
	rules, where := defaultLoadingRules()
	c.loading = rules
	rc, err := c.clientConfig().ClientConfig()
	switch {
	case clientcmd.IsEmptyConfig(err):
		c.loading = nil
		return nil, fmt.Errorf("kubernetes registry: no apiserver to use: not in a cluster (%v), --kubernetes-kubeconfig not given, "+
			"and %s gives no configuration (no such file, or an empty one)", inErr, where)
	case err != nil:
		return nil, fmt.Errorf("kubernetes registry: kubeconfig %s: %w", where, err)
	}
	return rc, nil
}

// defaultLoadingRules are clientcmd's default loading rules, with
// ~/.kube/config read from $HOME now (clientcmd reads it once, when the
// program starts), and where they look, for errors.
func defaultLoadingRules() (*clientcmd.ClientConfigLoadingRules, string) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.MigrationRules = nil // never move the user's files
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		return rules, fmt.Sprintf("$KUBECONFIG (%s)", env)
	}
	home := filepath.Join(homedir.HomeDir(), clientcmd.RecommendedHomeDir, clientcmd.RecommendedFileName)
	rules.Precedence = []string{home}
	return rules, fmt.Sprintf("~/.kube/config (%s; $KUBECONFIG unset)", home)
}

// clientConfig is the kubeconfig that loading finds.
func (c *config) clientConfig() clientcmd.ClientConfig {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(c.loading, &clientcmd.ConfigOverrides{})
}

// resolveNamespace returns the configured namespace, the kubeconfig
// context's (when a kubeconfig is used), the Pod's own, or "default".
func (c *config) resolveNamespace() (string, error) {
	if c.namespace != "" {
		return c.namespace, nil
	}
	if c.rest == nil && c.loading != nil {
		ns, _, err := c.clientConfig().Namespace()
		if err != nil {
			return "", fmt.Errorf("kubernetes registry: kubeconfig: namespace: %w", err)
		}
		return ns, nil
	}
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns, nil
		}
	}
	return "default", nil
}
