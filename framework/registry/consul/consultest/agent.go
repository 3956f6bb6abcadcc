// Package consultest runs a real Consul agent in -dev mode for tests and
// benchmarks. The agent binds 127.0.0.1 only, on free ports chosen when the
// Agent is made, keeps its state in memory, and can be stopped and started
// again on the same ports to play an agent restart.
//
// The binary is looked up in this order: $WARREN_CONSUL_BIN, bin/consul in
// the module root (found by walking up from the working directory to a
// go.mod next to bin/consul), then consul on $PATH. `make bin/consul` builds
// it from test/tools/consul.
package consultest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warren-mesh/warren/internal/freeport"
	"github.com/warren-mesh/warren/internal/proc"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// ErrNoBinary is returned (wrapped) when no consul binary can be found.
// Its text is read in projects of their own too (make up REGISTRY=consul
// of a generated project), where the make target does not exist.
var ErrNoBinary = errors.New("consul binary not found: put consul on PATH or set WARREN_CONSUL_BIN (in Warren's own repository: make bin/consul)")

// SkipEnv names the variable that, set to 1, lets test packages skip
// Consul tests instead of failing when no agent can be started.
const SkipEnv = "WARREN_SKIP_CONSUL"

// Skipped reports whether $WARREN_SKIP_CONSUL is 1.
func Skipped() bool { return os.Getenv(SkipEnv) == "1" }

// Binary returns the path of the consul binary, or an error wrapping
// ErrNoBinary.
func Binary() (string, error) {
	if p := os.Getenv("WARREN_CONSUL_BIN"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: WARREN_CONSUL_BIN=%s is not an executable file", ErrNoBinary, p)
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				if p := filepath.Join(dir, "bin", "consul"); isExecutable(p) {
					return p, nil
				}
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	return "", ErrNoBinary
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Ports are the agent's listening ports, all on 127.0.0.1.
type Ports struct {
	HTTP, DNS, SerfLAN, SerfWAN, Server, GRPC int
	HTTPS                                     int // 0 unless WithHTTPS
}

// Agent is one dev-mode Consul agent process. Its methods are safe for
// concurrent use.
type Agent struct {
	bin   string
	dir   string
	ports Ports
	extra string // HCL appended to the generated config
	mgmt  string // the management token the extra config sets, if any
	// certFile and keyFile serve HTTPS beside HTTP (WithHTTPS).
	certFile, keyFile string

	mu      sync.Mutex
	proc    atomic.Pointer[proc.Proc] // nil while stopped
	held    freeport.Keeper           // holds the TCP ports while stopped
	log     *syncbuf.Buffer
	closed  bool
	started int
}

// Option configures an Agent.
type Option func(*Agent)

// WithExtraConfig appends hcl to the agent's configuration, e.g. an acl
// block:
//
//	acl {
//	  enabled = true
//	  default_policy = "deny"
//	  tokens { initial_management = "<uuid>" }
//	}
//
// The ports and bind addresses are the package's; do not set them here.
func WithExtraConfig(hcl string) Option { return func(a *Agent) { a.extra = hcl } }

// WithManagementToken tells Start the management token that the
// WithExtraConfig acl block sets (tokens.initial_management). With it,
// Start also waits until the ACL system takes that token: the leader sets
// it up a moment after its election, and until then every request that
// needs it is refused ("403 ACL system must be bootstrapped").
func WithManagementToken(token string) Option { return func(a *Agent) { a.mgmt = token } }

// WithHTTPS has the agent serve its API over HTTPS too, on a port of its
// own (Ports().HTTPS, HTTPSAddr), with this certificate and key (PEM);
// HTTP stays on.
func WithHTTPS(certFile, keyFile string) Option {
	return func(a *Agent) { a.certFile, a.keyFile = certFile, keyFile }
}

// New finds the binary, picks free ports and writes the agent's config,
// without starting it. Close removes everything.
func New(opts ...Option) (*Agent, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	a := &Agent{bin: bin}
	for _, o := range opts {
		o(a)
	}
	if a.ports, err = freePorts(a.certFile != ""); err != nil {
		return nil, fmt.Errorf("consultest: ports: %w", err)
	}
	if a.dir, err = os.MkdirTemp("", "warren-consul-"); err != nil {
		return nil, fmt.Errorf("consultest: %w", err)
	}
	if err := os.WriteFile(a.configPath(), []byte(a.config()), 0o600); err != nil {
		os.RemoveAll(a.dir)
		return nil, fmt.Errorf("consultest: %w", err)
	}
	// Held until the first Start too: an agent made but not yet started
	// must not have its ports picked by the next one made (a test that
	// makes two agents and then starts both could be handed one port twice).
	a.hold()
	return a, nil
}

// Start is New followed by Agent.Start.
func Start(ctx context.Context, opts ...Option) (*Agent, error) {
	a, err := New(opts...)
	if err != nil {
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// Addr is the agent's HTTP address, "127.0.0.1:port".
func (a *Agent) Addr() string { return fmt.Sprintf("127.0.0.1:%d", a.ports.HTTP) }

// HTTPSAddr is the agent's HTTPS address, "127.0.0.1:port", or "" without
// WithHTTPS.
func (a *Agent) HTTPSAddr() string {
	if a.ports.HTTPS == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", a.ports.HTTPS)
}

// Ports returns the agent's ports.
func (a *Agent) Ports() Ports { return a.ports }

// Log returns what the agent printed so far (all runs).
func (a *Agent) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.log == nil {
		return ""
	}
	return a.log.String()
}

func (a *Agent) configPath() string { return filepath.Join(a.dir, "agent.hcl") }

func (a *Agent) config() string {
	p := a.ports
	https := ""
	if a.certFile != "" {
		https = fmt.Sprintf(`tls {
  defaults {
    cert_file = %q
    key_file = %q
  }
}
`, a.certFile, a.keyFile)
	}
	return fmt.Sprintf(`bind_addr = "127.0.0.1"
client_addr = "127.0.0.1"
advertise_addr = "127.0.0.1"
disable_update_check = true
log_level = "warn"
ports {
  http = %d
  https = %d
  dns = %d
  serf_lan = %d
  serf_wan = %d
  server = %d
  grpc = %d
  grpc_tls = -1
}
ui_config {
  enabled = false
}
`, p.HTTP, cmp.Or(p.HTTPS, -1), p.DNS, p.SerfLAN, p.SerfWAN, p.Server, p.GRPC) + https + a.extra + "\n"
}

// Start launches the agent and waits until it has elected itself leader
// and, with WithManagementToken, until its ACL system takes that token.
// Starting a running agent is an error. Each start is a fresh -dev agent:
// nothing registered before a Stop survives it.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errors.New("consultest: agent closed")
	}
	if a.proc.Load() != nil {
		a.mu.Unlock()
		return errors.New("consultest: agent already running")
	}
	a.started++
	if a.log == nil {
		a.log = &syncbuf.Buffer{}
	}
	fmt.Fprintf(a.log, "=== consultest: start #%d ===\n", a.started)
	cmd := exec.Command(a.bin, "agent", "-dev",
		"-node", fmt.Sprintf("warren-test-%d", a.ports.HTTP),
		"-config-file", a.configPath())
	cmd.Dir = a.dir
	cmd.Stdout = a.log
	cmd.Stderr = a.log
	a.held.Release() // just before the agent binds them
	p, err := proc.Run(cmd)
	if err != nil {
		a.mu.Unlock()
		return fmt.Errorf("consultest: start %s: %w", a.bin, err)
	}
	a.proc.Store(p)
	a.mu.Unlock()

	if err := a.waitReady(ctx, p.Exited()); err != nil {
		a.Stop()
		return fmt.Errorf("consultest: agent did not become ready: %w\n%s", err, tail(a.Log(), 2000))
	}
	return nil
}

// waitReady polls /v1/status/leader until it names a leader and then,
// with a management token, /v1/acl/token/self until it answers for that
// token (the initial management token is in the ACL state).
func (a *Agent) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	leader := false
	var last string
	for {
		path := "/v1/status/leader"
		if leader {
			path = "/v1/acl/token/self"
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.Addr()+path, nil)
		if leader {
			req.Header.Set("X-Consul-Token", a.mgmt)
		}
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%s: %s %s", path, resp.Status, bytes.TrimSpace(b))
			switch {
			case resp.StatusCode != http.StatusOK:
			case !leader && strings.Trim(strings.TrimSpace(string(b)), `"`) == "":
			case !leader && a.mgmt != "":
				leader = true
				continue
			default:
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return errors.New("agent exited")
		case <-ctx.Done():
			return fmt.Errorf("%w (last answer: %s)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the agent (SIGTERM, then SIGKILL after 5s) and waits for it.
// Stopping a stopped agent does nothing. Its TCP ports are then held until
// the next Start (freeport.Hold), so no other process takes one meanwhile.
func (a *Agent) Stop() error {
	if p := a.proc.Swap(nil); p != nil {
		p.Stop(syscall.SIGTERM, 5*time.Second)
		a.hold()
	}
	return nil
}

// Kill ends the agent at once with SIGKILL, as a crash would; its ports
// are held as after Stop.
func (a *Agent) Kill() {
	if p := a.proc.Swap(nil); p != nil {
		p.Kill()
		a.hold()
	}
}

// hold keeps the stopped agent's TCP ports (its UDP ones are found taken
// by freeport.Pick through TCP). Best effort: a port not held is only
// exposed as it was before, and a Start that finds it taken says so.
func (a *Agent) hold() {
	p := a.ports
	var addrs []string
	for _, port := range []int{p.HTTP, p.DNS, p.SerfLAN, p.SerfWAN, p.Server, p.GRPC, p.HTTPS} {
		if port != 0 {
			addrs = append(addrs, freeport.Addr(port))
		}
	}
	a.held.Hold(addrs...)
}

// Restart stops the agent and starts a fresh one on the same ports.
func (a *Agent) Restart(ctx context.Context) error {
	a.Stop()
	return a.Start(ctx)
}

// Close stops the agent and removes its directory. It is idempotent.
func (a *Agent) Close() error {
	a.Stop()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.held.Close()
	return os.RemoveAll(a.dir)
}

// freePorts picks the six ports of one agent, seven with HTTPS.
func freePorts(https bool) (Ports, error) {
	n := 6
	if https {
		n = 7
	}
	got, err := FreePorts(n)
	if err != nil {
		return Ports{}, err
	}
	p := Ports{HTTP: got[0], DNS: got[1], SerfLAN: got[2], SerfWAN: got[3], Server: got[4], GRPC: got[5]}
	if https {
		p.HTTPS = got[6]
	}
	return p, nil
}

// FreePorts picks n distinct ports free for both TCP and UDP on 127.0.0.1
// (serf and DNS listen on both), below the ephemeral range (freeport).
func FreePorts(n int) ([]int, error) {
	return freeport.Pick(n, true)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
