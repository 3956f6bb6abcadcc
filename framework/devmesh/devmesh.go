// Package devmesh runs the demo mesh on one machine: a registry server, two
// instances of every service under services/ as real OS processes, a wait
// until every instance is registered and ready, and an ordered shutdown
// (services drain and deregister, then the registry stops). `make up` and
// the end-to-end test both run it, so the test exercises exactly what a
// user runs.
//
// The registry is found by name among the Backends the caller lists
// (Config.Backends); each backend's dev-server package (etcddev for an
// embedded etcd, consuldev for a Consul agent in -dev mode) supplies one.
// devmesh itself contains no per-backend code.
package devmesh

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/registry"
)

// Backend is a registry the mesh can run: the backend itself, with which
// the launcher opens its own client exactly as a service process does, and
// a way to start a throwaway server of it.
type Backend struct {
	Registry registry.Backend
	// Start runs a fresh server for the mesh, keeping any state under dir
	// (which it may create), and returns once the server answers.
	Start func(ctx context.Context, dir string) (Server, error)
}

// Server is a registry server the mesh runs.
type Server interface {
	// Flags tell a service how to reach the server, as values of the
	// backend's own flags by flag name ("etcd-endpoints": "127.0.0.1:2379").
	// ttl is how long a dead instance may stay visible (a lease or check
	// TTL). The mesh passes them to services as WARREN_* variables and
	// opens its own client with them.
	Flags(ttl time.Duration) map[string]string
	// String says what runs where, for the launcher's log.
	String() string
	// Close stops the server and removes its state. It is idempotent.
	Close() error
}

// Config says what to run.
type Config struct {
	// Root is the module root (the directory with go.mod and services/).
	Root string
	// Backends are the registries the mesh can run.
	Backends []Backend
	// Registry names the one to run; default: the first of Backends.
	Registry string
	// Instances per service; default 2.
	Instances int
	// Zones are assigned to instances round robin; default zone-a, zone-b.
	Zones []string
	// Out receives the prefixed logs of every process and the launcher's
	// own lines; default os.Stdout.
	Out io.Writer
	// Color prefixes each service's lines in its own ANSI color.
	Color bool
	// StateDir holds binaries, data and snapshots; default Root/.warren.
	StateDir string
	// ReadyTimeout bounds the wait for every instance; default 60 s.
	ReadyTimeout time.Duration
	// Grace is each service's --grace; default 1 s.
	Grace time.Duration
	// TTL is the etcd lease / Consul check TTL; default 5 s.
	TTL time.Duration
	// Services limits the mesh to these services; default every service
	// under services/.
	Services []string
	// BinDir holds service binaries already built by Build; Start then
	// does not build. Default: build into StateDir/bin.
	BinDir string
}

// Instance is one running service process.
type Instance struct {
	Service string
	Index   int // 1-based
	Zone    string
	// Registered is filled from discovery once the instance is up.
	Registered registry.Instance

	id     string
	env    []string // extra environment, kept for Restart
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	// ending is set when the launcher itself ends the process (Kill,
	// SIGTERM, Stop), so only other exits are reported as deaths.
	ending atomic.Bool
}

// Mesh is a running mesh.
type Mesh struct {
	cfg       Config
	services  []string
	instances []*Instance
	server    Server
	disc      registry.Registry
	outMu     sync.Mutex // one line at a time on cfg.Out
	instMu    sync.Mutex // guards instances after Start
	stopOnce  sync.Once
	stopErr   error
	stopping  atomic.Bool // set when Stop begins: exits after it are expected
	unlock    func()      // releases the state directory
}

// ServiceDirs lists the services under root/services that have a main
// package at services/NAME/cmd/NAME.
func ServiceDirs(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*", "main.go"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		cmdDir := filepath.Dir(m)
		name := filepath.Base(cmdDir)
		if filepath.Base(filepath.Dir(filepath.Dir(cmdDir))) == name && registry.ValidName(name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return nil, fmt.Errorf("devmesh: no services/NAME/cmd/NAME/main.go under %s", root)
	}
	return out, nil
}

// Start starts the registry, builds every service, starts the instances,
// and returns once all are registered and ready. On error everything started
// is stopped.
func Start(ctx context.Context, cfg Config) (*Mesh, error) {
	cfg = withDefaults(cfg)
	// First of all: everything below writes under StateDir, and the
	// registry and data of a mesh already running there must not be wiped.
	unlock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	m := &Mesh{cfg: cfg, unlock: unlock}
	ok := false
	defer func() {
		if !ok {
			m.Stop()
		}
	}()
	all, err := ServiceDirs(cfg.Root)
	if err != nil {
		return nil, err
	}
	m.services = all
	if len(cfg.Services) > 0 {
		m.services = nil
		for _, s := range cfg.Services {
			if !slices.Contains(all, s) {
				return nil, fmt.Errorf("devmesh: no service %q under %s/services", s, cfg.Root)
			}
			m.services = append(m.services, s)
		}
	}
	// The registry before the build: a server that cannot start (no
	// consul binary, say) fails in a second, not after the services were
	// compiled for nothing. A failed build stops it (the deferred Stop).
	if err := m.startRegistry(ctx); err != nil {
		return nil, err
	}
	if cfg.BinDir == "" {
		m.cfg.BinDir = filepath.Join(cfg.StateDir, "bin")
		if err := m.build(ctx); err != nil {
			return nil, err
		}
	}
	// Each run starts clean: demo data, and snapshots that would point at
	// the previous run's ports.
	for _, d := range []string{"data", "snapshots"} {
		if err := os.RemoveAll(filepath.Join(cfg.StateDir, d)); err != nil {
			return nil, fmt.Errorf("devmesh: clear %s: %w", d, err)
		}
	}
	// A Ctrl-C during bring-up is acted on before the next process, not
	// after all of them; the deferred Stop stops those already started.
	total := len(m.services) * cfg.Instances
	for _, svc := range m.services {
		for i := 1; i <= cfg.Instances; i++ {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("devmesh: bring-up interrupted after %d of %d instances: %w", len(m.Instances()), total, err)
			}
			if _, err := m.startInstance(svc, i, nil); err != nil {
				return nil, err
			}
		}
	}
	if err := m.waitReady(ctx); err != nil {
		return nil, err
	}
	ok = true
	return m, nil
}

func withDefaults(c Config) Config {
	if c.Registry == "" && len(c.Backends) > 0 {
		c.Registry = c.Backends[0].Registry.Name
	}
	if c.Instances <= 0 {
		c.Instances = 2
	}
	if len(c.Zones) == 0 {
		c.Zones = []string{"zone-a", "zone-b"}
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.StateDir == "" {
		c.StateDir = filepath.Join(c.Root, ".warren")
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 60 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = time.Second
	}
	if c.TTL <= 0 {
		c.TTL = 5 * time.Second
	}
	return c
}

// logf writes one launcher line.
func (m *Mesh) logf(format string, args ...any) {
	m.outMu.Lock()
	defer m.outMu.Unlock()
	fmt.Fprintf(m.cfg.Out, "%s "+format+"\n", append([]any{m.paint("mesh", "   mesh |")}, args...)...)
}

// build compiles every service in one go build.
func (m *Mesh) build(ctx context.Context) error {
	start := time.Now()
	if err := buildServices(ctx, m.cfg.Root, m.cfg.BinDir, m.services); err != nil {
		return err
	}
	m.logf("built %s in %s", strings.Join(m.services, ", "), time.Since(start).Round(time.Millisecond))
	return nil
}

// Build compiles every service under root/services into binDir, for
// Config.BinDir: tests that start many meshes build once.
func Build(ctx context.Context, root, binDir string) error {
	services, err := ServiceDirs(root)
	if err != nil {
		return err
	}
	return buildServices(ctx, root, binDir, services)
}

func buildServices(ctx context.Context, root, bin string, services []string) error {
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return fmt.Errorf("devmesh: %w", err)
	}
	args := []string{"build", "-o", bin + string(filepath.Separator)}
	for _, s := range services {
		args = append(args, "./services/"+s+"/cmd/"+s)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("devmesh: go build: %w\n%s", err, out)
	}
	return nil
}

func (m *Mesh) startRegistry(ctx context.Context) error {
	be, err := m.backend()
	if err != nil {
		return err
	}
	dir := filepath.Join(m.cfg.StateDir, be.Registry.Name)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("devmesh: %w", err)
	}
	srv, err := be.Start(ctx, dir)
	if err != nil {
		return fmt.Errorf("devmesh: start %s: %w", be.Registry.Name, err)
	}
	m.server = srv
	m.logf("%s", srv)
	r, err := openClient(ctx, be.Registry, srv.Flags(m.cfg.TTL))
	if err != nil {
		return fmt.Errorf("devmesh: %s client: %w", be.Registry.Name, err)
	}
	m.disc = r
	return nil
}

// backend finds the configured registry among the listed backends.
func (m *Mesh) backend() (Backend, error) {
	var names registry.Backends
	for _, b := range m.cfg.Backends {
		if b.Registry.Name == m.cfg.Registry {
			if b.Start == nil {
				return Backend{}, fmt.Errorf("devmesh: registry %q has no dev server", m.cfg.Registry)
			}
			return b, nil
		}
		names = append(names, b.Registry)
	}
	_, err := names.Lookup(m.cfg.Registry)
	return Backend{}, fmt.Errorf("devmesh: %w", err)
}

// openClient opens be with the flag values a service would get, so the
// launcher sees the registry exactly as the services do.
func openClient(ctx context.Context, be registry.Backend, flags map[string]string) (registry.Registry, error) {
	fs := flag.NewFlagSet(be.Name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	settings, err := registry.Backends{be}.BindAll(fs)
	if err != nil {
		return nil, err
	}
	for name, v := range flags {
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("--%s: %w", name, err)
		}
	}
	s := settings[be.Name]
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s.Open(ctx, registry.OpenOptions{})
}

// registryEnv is what every service process is told about the registry.
func (m *Mesh) registryEnv() []string {
	env := []string{config.EnvName("registry") + "=" + m.cfg.Registry}
	for name, v := range m.server.Flags(m.cfg.TTL) {
		env = append(env, config.EnvName(name)+"="+v)
	}
	sort.Strings(env)
	return env
}

// startInstance starts instance i of svc; env is added last, so it
// overrides the launcher's variables.
func (m *Mesh) startInstance(svc string, i int, env []string) (*Instance, error) {
	zone := m.cfg.Zones[(i-1)%len(m.cfg.Zones)]
	inst := &Instance{Service: svc, Index: i, Zone: zone, id: fmt.Sprintf("%s-%d", svc, i), env: env, exited: make(chan struct{})}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "WARREN_ID="); ok {
			inst.id = v
		}
	}
	cmd := exec.Command(filepath.Join(m.cfg.BinDir, svc))
	cmd.Dir = m.cfg.Root
	cmd.Env = append(os.Environ(), m.registryEnv()...)
	cmd.Env = append(cmd.Env,
		"WARREN_ID="+inst.ID(),
		"WARREN_LISTEN=127.0.0.1:0",
		// gRPC, for services that serve it (--grpc-listen): a free port too.
		"WARREN_GRPC_LISTEN=127.0.0.1:0",
		"WARREN_ADVERTISE=127.0.0.1",
		// Metrics and pprof on a free loopback port; each service logs the
		// address in its listen line (docs/observability.md).
		"WARREN_DEBUG_LISTEN=127.0.0.1:0",
		"WARREN_ZONE="+zone,
		"WARREN_GRACE="+m.cfg.Grace.String(),
		"WARREN_DATA_DIR="+filepath.Join(m.cfg.StateDir, "data", svc),
		// By slot, not ID, like the output prefix: two processes may claim
		// one ID, and must not write one snapshot (docs/demo.md).
		"WARREN_SNAPSHOT_DIR="+filepath.Join(m.cfg.StateDir, "snapshots", fmt.Sprintf("%s-%d", svc, i)),
	)
	cmd.Env = append(cmd.Env, env...)
	// The process's slot, not its ID: unique even when two processes
	// claim one ID (a fault test's duplicate), so their lines stay apart.
	prefix := m.paint(svc, fmt.Sprintf("%7s |", fmt.Sprintf("%s-%d", svc, i)))
	w := &prefixWriter{out: m.cfg.Out, outMu: &m.outMu, prefix: prefix + " "}
	cmd.Stdout, cmd.Stderr = w, w
	// Own process group: a terminal's Ctrl-C reaches only the launcher,
	// which then stops the services in order. Pdeathsig: if the launcher
	// dies, so do they.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	inst.cmd = cmd
	// Checked and recorded under one lock with Stop's list: a process
	// started once Stop has begun would never be stopped.
	m.instMu.Lock()
	defer m.instMu.Unlock()
	if m.stopping.Load() {
		return nil, fmt.Errorf("devmesh: start %s: %w", inst.ID(), ErrStopped)
	}
	started := make(chan error, 1)
	go func() { // owned by the instance: ends when the process exits
		// The kernel sends the parent-death signal when the thread that
		// forked the child ends, not the launcher, and a thread ends with
		// a goroutine that exits locked to it (internal/proc's, for nginx
		// or a restarted Consul agent): fork on a thread of our own, kept
		// until the process has exited.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		inst.err = cmd.Wait()
		w.flush()
		close(inst.exited)
		if !inst.ending.Load() && !m.stopping.Load() {
			// Said when it happens, not first at Ctrl-C: the mesh runs on
			// with one instance fewer, and the user should know now.
			m.logf("%s exited unexpectedly (%s); not restarted, the mesh runs on without it", inst.ID(), exitReason(inst.err))
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("devmesh: start %s: %w", inst.ID(), err)
	}
	m.instances = append(m.instances, inst)
	return inst, nil
}

// waitReady watches discovery until every service has its instances, then
// checks each one's readiness (/readyz, or gRPC health; see ready).
func (m *Mesh) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ReadyTimeout)
	defer cancel()
	for _, svc := range m.services {
		insts, err := m.waitInstances(ctx, svc, m.cfg.Instances)
		if err != nil {
			return err
		}
		for _, ri := range insts {
			for _, in := range m.Instances() {
				if in.ID() == ri.ID {
					in.Registered = ri
				}
			}
		}
	}
	client := &http.Client{Timeout: 2 * time.Second}
	for _, in := range m.Instances() {
		for {
			if ok, _ := m.ready(ctx, client, in); ok {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("devmesh: %s not ready: %w", in.ID(), ctx.Err())
			case <-in.exited:
				return in.exitedError()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

// ID is the instance ID the launcher gives the process: service-index,
// unless its extra environment sets WARREN_ID. The launcher's messages
// name the instance by it, the ID it registers under; its output lines
// keep the service-index prefix, which two processes never share.
func (in *Instance) ID() string { return in.id }

// ErrStopped is returned by StartInstance and Restart once Stop has
// begun: a process started then would outlive the mesh.
var ErrStopped = errors.New("the mesh is stopping")

// stopTimeout is how long past its grace Stop waits for the instances to
// exit after SIGTERM before it kills them; a variable for tests.
var stopTimeout = 20 * time.Second

// errExited is returned by watchUntil when the watched process exits.
var errExited = errors.New("process exited")

// watchUntil subscribes to svc in discovery and returns the first event
// for which done says so (or done's error). It gives up when ctx ends or
// exited (may be nil) closes. The subscription is undone before it returns.
func (m *Mesh) watchUntil(ctx context.Context, svc string, exited <-chan struct{}, done func(sd.Event) (bool, error)) (sd.Event, error) {
	ins, err := m.disc.Instancer(ctx, svc)
	if err != nil {
		return sd.Event{}, fmt.Errorf("devmesh: watch %s: %w", svc, err)
	}
	defer ins.Stop()
	ch := make(chan sd.Event, 1)
	ins.Register(ch)
	defer func() {
		go func() { // drain while Deregister runs: the cache sends synchronously
			for range ch {
			}
		}()
		ins.Deregister(ch)
		close(ch)
	}()
	for {
		select {
		case ev := <-ch:
			ok, err := done(ev)
			if err != nil || ok {
				return ev, err
			}
		case <-exited:
			return sd.Event{}, errExited
		case <-ctx.Done():
			return sd.Event{}, ctx.Err()
		}
	}
}

// parseAll returns the instances of an event that parse.
func parseAll(ev sd.Event) []registry.Instance {
	var out []registry.Instance
	for _, s := range ev.Instances {
		if ri, err := registry.ParseInstance(s); err == nil {
			out = append(out, ri)
		}
	}
	return out
}

// waitInstances waits until discovery shows n instances of svc, failing
// as soon as one of the mesh's processes exits.
func (m *Mesh) waitInstances(ctx context.Context, svc string, n int) ([]registry.Instance, error) {
	// Watched beside discovery, not looked at per event: an instance that
	// dies before it registers sends no event.
	insts := m.Instances()
	done := make(chan struct{})
	defer close(done)
	ev, err := m.watchUntil(ctx, svc, anyExited(insts, done), func(ev sd.Event) (bool, error) {
		return len(ev.Instances) >= n && ev.Err == nil, nil
	})
	if errors.Is(err, errExited) {
		for _, in := range insts {
			if !in.running() {
				return nil, in.exitedError()
			}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("devmesh: %s: fewer than %d instances registered: %w", svc, n, err)
	}
	if err != nil {
		return nil, err
	}
	return parseAll(ev), nil
}

// anyExited is closed when one of insts exits; its goroutines end then or
// when done closes.
func anyExited(insts []*Instance, done <-chan struct{}) <-chan struct{} {
	exited := make(chan struct{})
	var once sync.Once
	for _, in := range insts {
		go func() { // owned by the caller: ends with done or the exit
			select {
			case <-in.exited:
				once.Do(func() { close(exited) })
			case <-done:
			}
		}()
	}
	return exited
}

// running says whether the instance's process has not exited yet.
func (in *Instance) running() bool {
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// Services returns the service names, sorted.
func (m *Mesh) Services() []string { return append([]string(nil), m.services...) }

// Instances returns every instance started, in start order (a restarted
// instance appears once per process).
func (m *Mesh) Instances() []*Instance {
	m.instMu.Lock()
	defer m.instMu.Unlock()
	return append([]*Instance(nil), m.instances...)
}

// Instance returns the latest process of instance i (1-based) of svc, or
// nil.
func (m *Mesh) Instance(svc string, i int) *Instance {
	insts := m.Instances()
	for j := len(insts) - 1; j >= 0; j-- {
		if in := insts[j]; in.Service == svc && in.Index == i {
			return in
		}
	}
	return nil
}

// Discovery returns the launcher's own registry client.
func (m *Mesh) Discovery() registry.Discovery { return m.disc }

// Kill sends SIGKILL to an instance (for fault demos and tests).
func (m *Mesh) Kill(in *Instance) error {
	in.ending.Store(true)
	if err := in.cmd.Process.Kill(); err != nil {
		return err
	}
	<-in.exited
	return nil
}

// Exited is closed when the instance's process has exited.
func (in *Instance) Exited() <-chan struct{} { return in.exited }

// Pid is the instance's process ID.
func (in *Instance) Pid() int { return in.cmd.Process.Pid }

// Stop stops the services (SIGTERM: they withdraw, drain and deregister),
// checks that no registration is left, then stops the registry. It is
// idempotent and returns the first problem it met.
func (m *Mesh) Stop() error {
	m.stopOnce.Do(func() { m.stopErr = m.stop() })
	return m.stopErr
}

func (m *Mesh) stop() error {
	m.instMu.Lock() // no instance starts after this list is taken
	m.stopping.Store(true)
	instances := append([]*Instance(nil), m.instances...)
	m.instMu.Unlock()
	if m.unlock != nil {
		defer m.unlock()
	}
	var errs []error
	var running []*Instance
	for _, in := range instances {
		select {
		case <-in.exited:
		default:
			running = append(running, in)
		}
	}
	if len(running) > 0 {
		m.logf("stopping %d instance(s): SIGTERM, drain, deregister", len(running))
	}
	for _, in := range running {
		in.ending.Store(true)
		_ = in.cmd.Process.Signal(syscall.SIGTERM)
		_ = in.cmd.Process.Signal(syscall.SIGCONT) // a stopped (SIGSTOP) process must run to exit
	}
	// One deadline for all: they drain side by side, and n hung instances
	// must not hold the launcher n times as long.
	deadline := time.NewTimer(m.cfg.Grace + stopTimeout)
	defer deadline.Stop()
	late := false
	for _, in := range running {
		if !late {
			select {
			case <-in.exited:
				continue
			case <-deadline.C:
				late = true
			}
		}
		if !in.running() {
			continue
		}
		_ = in.cmd.Process.Kill()
		<-in.exited
		errs = append(errs, fmt.Errorf("%s did not stop in time; killed", in.ID()))
	}
	if m.disc != nil {
		if left := m.leftovers(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("registrations left behind: %s", strings.Join(left, ", ")))
		} else if len(running) > 0 {
			m.logf("all instances stopped; no registration left")
		}
		m.disc.Close()
	}
	if m.server != nil {
		errs = append(errs, m.server.Close())
		m.logf("%s registry stopped", m.cfg.Registry)
	}
	return errors.Join(errs...)
}

// leftovers lists instances still in discovery, skipping those that were
// killed (their records expire by TTL, as designed).
func (m *Mesh) leftovers() []string {
	killed := map[string]bool{}
	for _, in := range m.Instances() { // the latest process of an ID decides
		ws, ok := in.cmd.ProcessState.Sys().(syscall.WaitStatus)
		killed[in.ID()] = ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
	}
	var left []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, svc := range m.services {
		ev, err := m.watchUntil(ctx, svc, nil, func(sd.Event) (bool, error) { return true, nil })
		if errors.Is(err, context.DeadlineExceeded) {
			continue // no answer in time: nothing seen to report
		}
		if err != nil {
			left = append(left, fmt.Sprintf("%s (cannot check: %v)", svc, err))
			continue
		}
		for _, ri := range parseAll(ev) {
			if !killed[ri.ID] {
				left = append(left, ri.ID)
			}
		}
	}
	return left
}

// exitedError is the error for an instance whose process exited while the
// launcher waited on it. It wraps how the process ended, so a caller can
// errors.As it to an *exec.ExitError (the exit status) or a start error;
// after exit 0 there is nothing to wrap, and the message says the status.
func (in *Instance) exitedError() error {
	if in.err == nil {
		return fmt.Errorf("devmesh: %s exited: exit status 0", in.ID())
	}
	return fmt.Errorf("devmesh: %s exited: %w", in.ID(), in.err)
}

// exitReason says how a process ended, for the launcher's log.
func exitReason(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// FindRoot returns the module root for Config.Root: dir or the nearest
// directory above it with a go.mod. Tests run in their package directory
// and use it to find the mesh's services.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("devmesh: %w", err)
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("devmesh: no go.mod at or above %s", abs)
		}
	}
}
