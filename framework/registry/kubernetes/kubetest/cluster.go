// Package kubetest runs a real Kubernetes control plane for tests: an
// embedded etcd, bin/kube-apiserver and bin/kube-controller-manager (with
// only the EndpointSlice and ServiceAccount controllers), all on
// 127.0.0.1 and free ports, and a Kubelet that stands in for the kubelets
// and the scheduler that do not run: it creates Nodes and Pods and writes
// Pod status the way a kubelet does.
//
// `make kube-tools` (a dependency of `make test`) builds the two servers
// into bin/ (mk/kube.mk); $WARREN_KUBE_BIN names another directory. Start
// one Cluster per test binary (TestMain) and share it: it takes a few
// seconds to come up.
//
// Pod and EndpointSlice addresses may not be loopback, so Pods get
// addresses from the documentation range 192.0.2.0/24: data only, never
// dialled.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/internal/freeport"
	"github.com/warren-mesh/warren/internal/proc"
)

// ErrNoBinaries is returned (wrapped) when kube-apiserver or
// kube-controller-manager is not built.
var ErrNoBinaries = errors.New("kube-apiserver/kube-controller-manager not built: run `make kube-tools` or set WARREN_KUBE_BIN")

// Namespace is where tests put their objects; it always exists.
const Namespace = "default"

// Cluster is one control plane. Its methods are safe for concurrent use.
type Cluster struct {
	dir   string
	bin   string
	port  int
	token string
	etcd  *embedetcd.Server
	// held holds the apiserver's port from the pick until just before
	// its exec, and claims it until Close (freeport.Keeper): the apiserver
	// binds it seconds after it starts, under load.
	held freeport.Keeper

	mu        sync.Mutex
	apiserver *proc.Proc
	cm        *proc.Proc
	closed    bool
}

// BinDir returns the directory holding kube-apiserver: $WARREN_KUBE_BIN,
// or the bin/ of the nearest directory above the working directory that
// has one.
func BinDir() (string, error) {
	if d := os.Getenv("WARREN_KUBE_BIN"); d != "" {
		return d, check(d)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if check(filepath.Join(d, "bin")) == nil {
			return filepath.Join(d, "bin"), nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w (looked in bin/ above %s)", ErrNoBinaries, wd)
		}
	}
}

func check(dir string) error {
	for _, b := range []string{"kube-apiserver", "kube-controller-manager"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%w: no %s in %s", ErrNoBinaries, b, dir)
		}
	}
	return nil
}

// Start starts etcd, the apiserver and the controller manager, and
// returns once the apiserver is ready and the controllers run (the
// default ServiceAccount exists). Close stops everything.
func Start(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "warren-kube-")
	if err != nil {
		return nil, fmt.Errorf("kubetest: %w", err)
	}
	c := &Cluster{dir: dir, bin: bin}
	if err := c.start(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("%w\n%s", err, c.Logs())
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context) error {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	c.token = hex.EncodeToString(tok[:])
	if err := c.writeFiles(); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	c.port = port
	c.held.Hold(freeport.Addr(port))
	c.etcd, err = embedetcd.Start(embedetcd.WithDir(filepath.Join(c.dir, "etcd")))
	if err != nil {
		return fmt.Errorf("kubetest: etcd: %w", err)
	}
	if err := c.startAPIServer(ctx); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, "kubeconfig"), []byte(c.kubeconfig()), 0o600); err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	cm, err := proc.Start(exec.Command(filepath.Join(c.bin, "kube-controller-manager"),
		"--kubeconfig="+filepath.Join(c.dir, "kubeconfig"),
		"--controllers=endpointslice,serviceaccount",
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--use-service-account-credentials=false"),
		filepath.Join(c.dir, "controller-manager.log"))
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	c.mu.Lock()
	c.cm = cm
	c.mu.Unlock()
	return c.waitControllers(ctx)
}

// writeFiles writes the token file and the service-account key pair.
func (c *Cluster) writeFiles() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("kubetest: key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("kubetest: key: %w", err)
	}
	files := map[string][]byte{
		"tokens.csv": []byte(c.token + ",warren-test,uid-1,system:masters\n"),
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
			return fmt.Errorf("kubetest: %w", err)
		}
	}
	return nil
}

func (c *Cluster) startAPIServer(ctx context.Context) error {
	d := c.dir
	c.held.Release() // just before the apiserver binds it
	p, err := proc.Start(exec.Command(filepath.Join(c.bin, "kube-apiserver"),
		"--etcd-servers=http://"+c.etcd.Endpoints()[0],
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(c.port), "--cert-dir="+filepath.Join(d, "certs"),
		"--token-auth-file="+filepath.Join(d, "tokens.csv"), "--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--service-account-key-file="+filepath.Join(d, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(d, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=10.96.0.0/24",
		"--enable-priority-and-fairness=false", "--profiling=false"),
		filepath.Join(d, "apiserver.log"))
	if err != nil {
		return fmt.Errorf("kubetest: %w", err)
	}
	c.mu.Lock()
	c.apiserver = p
	c.mu.Unlock()
	return c.waitReady(ctx, p)
}

// waitReady polls /readyz until the apiserver answers 200.
func (c *Cluster) waitReady(ctx context.Context, p *proc.Proc) error {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		// The apiserver's self-signed certificate is made at start-up;
		// this probe only asks whether it serves.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback probe
	}}
	defer hc.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d/readyz", c.port)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubetest: kube-apiserver not ready: %w", ctx.Err())
		case <-p.Exited():
			return errors.New("kubetest: kube-apiserver exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitControllers waits for the ServiceAccount controller to create the
// namespace's default ServiceAccount: the controller manager is up and
// Pods can be created.
func (c *Cluster) waitControllers(ctx context.Context) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	for {
		if _, err := cs.CoreV1().ServiceAccounts(Namespace).Get(ctx, "default", getOpts); err == nil {
			return nil
		}
		c.mu.Lock()
		cm := c.cm
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubetest: controller manager not running: %w", ctx.Err())
		case <-cm.Exited():
			return errors.New("kubetest: kube-controller-manager exited")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Config returns a client configuration with full rights.
func (c *Cluster) Config() *rest.Config {
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", c.port),
		BearerToken:     c.token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: filepath.Join(c.dir, "certs", "apiserver.crt")},
		// Tests create many objects quickly; the default 5 QPS would make
		// the client the bottleneck.
		QPS: 500, Burst: 1000,
	}
}

// Clientset returns a client of the cluster.
func (c *Cluster) Clientset() (kubernetes.Interface, error) {
	cs, err := kubernetes.NewForConfig(c.Config())
	if err != nil {
		return nil, fmt.Errorf("kubetest: client: %w", err)
	}
	return cs, nil
}

// Kubeconfig returns the path of a kubeconfig file for the cluster (for
// helm and --kubernetes-kubeconfig).
func (c *Cluster) Kubeconfig() string { return filepath.Join(c.dir, "kubeconfig") }

func (c *Cluster) kubeconfig() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority: %s
users:
- name: kubetest
  user:
    token: %s
contexts:
- name: kubetest
  context: {cluster: kubetest, user: kubetest, namespace: %s}
current-context: kubetest
`, c.port, filepath.Join(c.dir, "certs", "apiserver.crt"), c.token, Namespace)
}

// RestartAPIServer kills the apiserver and starts it again on the same
// port; etcd keeps every object. It returns once the apiserver is ready.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	c.mu.Lock()
	p := c.apiserver
	c.mu.Unlock()
	if p != nil {
		p.Kill()
	}
	return c.startAPIServer(ctx)
}

// Logs returns the tail of the servers' logs, for a failing test.
func (c *Cluster) Logs() string {
	out := ""
	for _, f := range []string{"apiserver.log", "controller-manager.log"} {
		b, _ := os.ReadFile(filepath.Join(c.dir, f))
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		out += fmt.Sprintf("--- %s (tail) ---\n%s\n", f, b)
	}
	return out
}

// Close stops the controller manager, the apiserver and etcd and removes
// their files. Idempotent.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	cm, api := c.cm, c.apiserver
	c.mu.Unlock()
	if cm != nil {
		cm.Kill()
	}
	if api != nil {
		api.Kill()
	}
	if c.etcd != nil {
		c.etcd.Close()
	}
	c.held.Close()
	os.RemoveAll(c.dir)
}

// freePort picks a free TCP port on 127.0.0.1 below the ephemeral range
// (freeport), so no outgoing connection takes it before a server binds.
func freePort() (int, error) {
	ports, err := freeport.Pick(1, false)
	if err != nil {
		return 0, fmt.Errorf("kubetest: %w", err)
	}
	return ports[0], nil
}
