//go:build compose

package compose

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// engine is rootful podman with runc, reached by docker-compose through
// deploy/compose/with-podman.sh, exactly as `make compose-up` does it: no
// CONTAINERS_CONF of the test's, so the script writes and keeps its own
// (the conf every container's exit hook, and so its restart policy, reads
// after the script has exited).
type engine struct {
	root     string   // repository root: commands run there
	env      []string // WARREN_IMAGE_CONTEXT, WARREN_TAG, TMPDIR
	tag      string
	imageDir string
}

// requireEngine fails (this file only builds with -tags compose, so
// nothing here is optional) unless the tools the test drives exist.
func requireEngine(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the compose test needs root (rootful podman); run it with make test or make compose-test as root")
	}
	for _, tool := range []string{"podman", "runc", "docker-compose", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: make compose-deps installs podman, runc and docker-compose", tool)
		}
	}
}

func uniqueName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// newEngine returns the environment every command gets.
func newEngine(t *testing.T) *engine {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// with-podman.sh makes its socket directory under TMPDIR: a process
	// still naming this directory after the test is a leaked service.
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range processesNaming(run) {
			t.Errorf("left running: pid %d: %s", p.pid, p.cmdline)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	tag := uniqueName("t")
	return &engine{
		root:     root,
		tag:      tag,
		imageDir: filepath.Join(dir, "image"),
		env: []string{
			"WARREN_IMAGE_CONTEXT=" + filepath.Join(dir, "image"),
			"WARREN_TAG=" + tag,
			"TMPDIR=" + run,
		},
	}
}

type process struct {
	pid     int
	cmdline string
}

// processesNaming lists the processes whose command line contains s.
func processesNaming(s string) []process {
	var ps []process
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, s) {
			ps = append(ps, process{pid, cmd})
		}
	}
	return ps
}

// run runs a command in the repository root, bounded by ctx and by limit.
// On either deadline the command gets SIGTERM (with-podman.sh then stops
// its podman service) and, 20 s later, SIGKILL. Output is combined.
func (e *engine) run(ctx context.Context, limit time.Duration, extraEnv []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = e.root
	var env []string
	for _, kv := range os.Environ() {
		// The test's own CONTAINERS_CONF would hide with-podman.sh's.
		if !strings.HasPrefix(kv, "CONTAINERS_CONF=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(append(env, e.env...), extraEnv...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (gave up after %s: %v)", err, time.Since(start).Round(time.Second), ctx.Err())
		}
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(out.String(), 60))
	}
	return out.String(), nil
}

// podman runs the podman CLI (same storage and containers.conf as the API
// service the wrapper starts).
func (e *engine) podman(ctx context.Context, args ...string) (string, error) {
	return e.run(ctx, 2*time.Minute, nil, "podman", args...)
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("[%d lines cut]", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// profile is one variant of compose.yaml.
type profile struct {
	name          string // --profile
	registry      string // the registry service
	user, order   string // the services' names in compose.yaml
	registryPorts []int  // container ports of the registry published on the host
}

var profiles = []profile{
	{name: "etcd", registry: "etcd", user: "user", order: "order"},
	{name: "consul", registry: "consul", user: "user-consul", order: "order-consul", registryPorts: []int{8500}},
}

// stack is one compose project: a unique name per run, so runs (and other
// checkouts' runs on the same machine) never share containers, networks or
// volumes.
type stack struct {
	e       *engine
	project string
	profile profile
	files   []string // compose files after compose.yaml (overrides)
	clean   bool     // down ran and left nothing: no cleanup needed
}

func newStack(e *engine, p profile, files ...string) *stack {
	return &stack{e: e, project: uniqueName("warrentest" + p.name), profile: p, files: files}
}

func (s *stack) args(sub ...string) []string {
	a := []string{"docker-compose", "-f", "deploy/compose/compose.yaml"}
	for _, f := range s.files {
		a = append(a, "-f", f)
	}
	return append(append(a, "--profile", s.profile.name), sub...)
}

// compose runs docker-compose through with-podman.sh; waitHealthy adds
// --wait-healthy (every container running and healthy, or fail).
func (s *stack) compose(ctx context.Context, limit time.Duration, waitHealthy bool, sub ...string) (string, error) {
	var a []string
	if waitHealthy {
		a = append(a, "--wait-healthy")
	}
	a = append(a, s.args(sub...)...)
	return s.e.run(ctx, limit, []string{"COMPOSE_PROJECT_NAME=" + s.project, "WAIT_HEALTHY_TIMEOUT=240"},
		"deploy/compose/with-podman.sh", a...)
}

// portRace finds the service a start failed for because its published
// host port was taken: the engine picks a free host port for "127.0.0.1::8080"
// and binds it a moment later, and on a busy machine another process's
// connection can take that port in between (a loaded make test beside
// another failed so: "Cannot start service order-consul: cannot listen on
// the TCP port: listen tcp4 127.0.0.1:45633: bind: address already in use").
var portRace = regexp.MustCompile(`Cannot start service ([\w.-]+): cannot listen on the TCP port: .*address already in use`)

// up runs up -d. A start lost to the engine's port race is not the
// stack's failure: that service's container is removed and up runs again,
// at most twice, so the engine picks another port.
func (s *stack) up(ctx context.Context, t *testing.T) (string, error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		out, err := s.compose(ctx, 6*time.Minute, true, "up", "-d", "--no-build")
		m := portRace.FindStringSubmatch(out + errText(err))
		if err == nil || m == nil || attempt == 3 {
			return out, err
		}
		t.Logf("up: %s lost its host port to another process before the engine bound it; removing it and starting again", m[1])
		if _, err := s.compose(ctx, 2*time.Minute, false, "rm", "-f", "-s", m[1]); err != nil {
			return out, err
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitHealthy runs the wrapper's health wait with no compose command.
func (s *stack) waitHealthy(ctx context.Context) error {
	_, err := s.e.run(ctx, 5*time.Minute, []string{"COMPOSE_PROJECT_NAME=" + s.project, "WAIT_HEALTHY_TIMEOUT=240"},
		"deploy/compose/with-podman.sh", "--wait-healthy", "true")
	return err
}

// dumpLogs logs each container's state and last lines, for a failed test.
func (s *stack) dumpLogs(ctx context.Context, t *testing.T) {
	cs, err := s.containers(ctx)
	if err != nil {
		t.Logf("containers: %v", err)
		return
	}
	for _, c := range cs {
		logs, _ := s.e.podman(ctx, "logs", "--tail", "30", c.ID)
		t.Logf("%s (%s, health %q, exit %d, restarts %d) last logs:\n%s", c.Name, c.State.Status, c.health(), c.State.ExitCode, c.RestartCount, logs)
	}
}

// downAndCheck runs down and then looks for anything of the project left.
// After a failure it first logs what the containers said.
func (s *stack) downAndCheck(ctx context.Context, t *testing.T) {
	t.Helper()
	if t.Failed() {
		s.dumpLogs(ctx, t)
	}
	if err := s.down(ctx); err != nil {
		t.Fatal(err)
	}
	left, err := s.leftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("down left behind: %v", left)
	}
	s.clean = true
}

// down is `make compose-down` of the project: down, and again after a
// podman rm -f when a restarting container made it fail.
func (s *stack) down(ctx context.Context) error {
	_, err := s.make(ctx, 8*time.Minute, "compose-down")
	return err
}

// make runs a target of mk/compose.mk for this stack's project.
func (s *stack) make(ctx context.Context, limit time.Duration, target string, vars ...string) (string, error) {
	args := append([]string{"-s", "--no-print-directory", target, "COMPOSE_PROJECT=" + s.project,
		"COMPOSE_TAG=" + s.e.tag, "COMPOSE_CONTEXT=" + s.e.imageDir, "REGISTRY=" + s.profile.name}, vars...)
	return s.e.run(ctx, limit, nil, "make", args...)
}

// container is what the test needs of `podman inspect`.
type container struct {
	ID    string `json:"Id"`
	Name  string
	State struct {
		Status   string
		Pid      int
		ExitCode int
		Health   *struct{ Status string }
	}
	RestartCount int
	Config       struct{ Labels map[string]string }

	NetworkSettings struct {
		Ports map[string][]struct{ HostIp, HostPort string }
	}
}

func (c container) service() string { return c.Config.Labels["com.docker.compose.service"] }

func (c container) number() int {
	n, _ := strconv.Atoi(c.Config.Labels["com.docker.compose.container-number"])
	return n
}

func (c container) health() string {
	if c.State.Health == nil {
		return ""
	}
	return c.State.Health.Status
}

// url is http://HOST:PORT of the published container port.
func (c container) url(port int) (string, error) {
	for _, b := range c.NetworkSettings.Ports[fmt.Sprintf("%d/tcp", port)] {
		if b.HostPort != "" {
			return "http://" + b.HostIp + ":" + b.HostPort, nil
		}
	}
	return "", fmt.Errorf("%s: port %d is not published", c.Name, port)
}

// containers inspects every container of the project.
func (s *stack) containers(ctx context.Context) ([]container, error) {
	ids, err := s.e.podman(ctx, "ps", "-aq", "--filter", "label=com.docker.compose.project="+s.project)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(ids) == "" {
		return nil, nil
	}
	out, err := s.e.podman(ctx, append([]string{"inspect", "--format", "json"}, strings.Fields(ids)...)...)
	if err != nil {
		return nil, err
	}
	var cs []container
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		return nil, fmt.Errorf("podman inspect: %w", err)
	}
	return cs, nil
}

// replica returns replica n (from 1) of service.
func replica(cs []container, service string, n int) (container, error) {
	for _, c := range cs {
		if c.service() == service && c.number() == n {
			return c, nil
		}
	}
	return container{}, fmt.Errorf("no container %d of %s among %d", n, service, len(cs))
}

// leftovers lists what of the project is still on the machine:
// containers, networks and volumes, by compose's project label and by the
// names compose gives them.
func (s *stack) leftovers(ctx context.Context) ([]string, error) {
	var left []string
	for _, q := range [][]string{
		{"ps", "-a", "--format", "json"},
		{"network", "ls", "--format", "json"},
		{"volume", "ls", "--format", "json"},
	} {
		out, err := s.e.podman(ctx, q...)
		if err != nil {
			return nil, err
		}
		// encoding/json matches keys case-insensitively: "Names" of ps,
		// "name"/"labels" of networks, "Name"/"Labels" of volumes.
		var objs []struct {
			Name   string
			Names  []string
			Labels map[string]string
		}
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &objs); err != nil {
				return nil, fmt.Errorf("podman %s: %w", strings.Join(q, " "), err)
			}
		}
		for _, o := range objs {
			name := o.Name
			if name == "" && len(o.Names) > 0 {
				name = o.Names[0]
			}
			// Compose names them PROJECT_x (v1) or PROJECT-x (v2).
			if o.Labels["com.docker.compose.project"] == s.project ||
				strings.HasPrefix(name, s.project+"_") || strings.HasPrefix(name, s.project+"-") {
				left = append(left, q[0]+" "+name)
			}
		}
	}
	return left, nil
}

// forceRemove is the cleanup of last resort, after a failure: whatever of
// the project is left, removed by ID/name with podman itself.
func (s *stack) forceRemove(ctx context.Context) error {
	left, err := s.leftovers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, kind := range []string{"ps", "network", "volume"} {
		var names []string
		for _, l := range left {
			if k, name, _ := strings.Cut(l, " "); k == kind {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			continue
		}
		var args []string
		switch kind {
		case "ps":
			args = append([]string{"rm", "-f", "-t", "5"}, names...)
		case "network":
			args = append([]string{"network", "rm", "-f"}, names...)
		case "volume":
			args = append([]string{"volume", "rm", "-f"}, names...)
		}
		if _, err := s.e.podman(ctx, args...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// cleanup is registered right after a stack is made: on success the test
// has already run `down` and checked it left nothing; on failure this
// brings the machine back to where it was. It gets its own time, since
// the test's may be spent.
func (s *stack) cleanup(t *testing.T) {
	t.Cleanup(func() {
		if s.clean {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if t.Failed() {
			s.dumpLogs(ctx, t)
		}
		if err := s.down(ctx); err != nil {
			t.Logf("cleanup: %v", err)
		}
		if err := s.forceRemove(ctx); err != nil {
			t.Errorf("cleanup of project %s: %v", s.project, err)
		}
	})
}
