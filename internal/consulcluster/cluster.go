// Package consulcluster runs a real Consul datacenter for tests and
// benchmarks: server agents (Raft) and client agents from bin/consul, each
// its own process group, joined over the LAN gossip pool; two such
// datacenters can be joined over the WAN pool. Every agent binds 127.0.0.1
// on free ports and keeps its data in a temporary directory, so a killed
// agent restarts with the registrations it had, as on a real node.
package consulcluster

import (
	"cmp"
	"context"
	"encoding/json"
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
	"time"

	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/internal/freeport"
	"github.com/warren-mesh/warren/internal/proc"
)

// Config describes one datacenter.
type Config struct {
	Datacenter string // default "dc1"
	Servers    int    // default 3
	Clients    int    // client agents, default 0
	// JoinWAN lists serf WAN addresses of another datacenter's servers
	// (its WANAddrs) to join over the WAN.
	JoinWAN []string
}

// Agent is one Consul agent process.
type Agent struct {
	Name   string
	Server bool
	http   int
	lan    int
	wan    int
	rpc    int
	args   []string
	log    string

	mu   sync.Mutex
	proc *proc.Proc // nil while stopped
}

// Addr is the agent's HTTP API address, "127.0.0.1:port".
func (a *Agent) Addr() string { return fmt.Sprintf("127.0.0.1:%d", a.http) }

// Cluster is one running datacenter.
type Cluster struct {
	DC      string
	Servers []*Agent
	Clients []*Agent
	dir     string
	bin     string
	once    sync.Once
	// claimed keeps every agent's ports claimed until Close
	// (freeport.Keeper.Claim), so no other test process picks one while
	// the agent starts or is down. Claimed, not held: with a killed
	// agent's ports held, make bench's leader kill stopped routing to the
	// backend added during the fault (cause not found).
	claimed freeport.Keeper
	rejoins atomic.Int64 // joins WaitReady made (Rejoins)
}

// ErrExited is returned (wrapped) by WaitReady when an agent's process
// ended without Kill.
var ErrExited = errors.New("agent process exited")

// startAttempts bounds Start's tries with fresh ports. Free ports are
// found by listening and closing, so another process may bind one before
// the agent does (a fresh-machine bench run lost one of its 20 that way).
const startAttempts = 3

// Start runs the datacenter and waits (bounded by ctx) until it has a
// leader and every agent is a live member of it. An agent that exits at
// start because one of its ports was taken meanwhile makes Start begin
// again on fresh ports, up to startAttempts times.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	return startWith(ctx, cfg, consultest.FreePorts)
}

// startWith is Start with the source of free ports given, so a test can
// hand the first attempt a taken one.
func startWith(ctx context.Context, cfg Config, freePorts func(n int) ([]int, error)) (*Cluster, error) {
	if cfg.Datacenter == "" {
		cfg.Datacenter = "dc1"
	}
	if cfg.Servers <= 0 {
		cfg.Servers = 3
	}
	bin, err := consultest.Binary()
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		c, err := start(ctx, cfg, bin, freePorts)
		if err == nil || attempt == startAttempts || !errors.Is(err, errPortTaken) {
			return c, err
		}
	}
}

// errPortTaken marks a start that failed because an agent could not bind.
var errPortTaken = errors.New("port taken before the agent bound it")

func start(ctx context.Context, cfg Config, bin string, freePorts func(n int) ([]int, error)) (*Cluster, error) {
	dir, err := os.MkdirTemp("", "warren-consulcluster-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{DC: cfg.Datacenter, dir: dir, bin: bin}
	n := cfg.Servers + cfg.Clients
	ports, err := freePorts(4 * n)
	if err != nil {
		c.Close()
		return nil, err
	}
	for _, p := range ports {
		c.claimed.Claim(freeport.Addr(p))
	}
	var join []string
	for i := range n {
		a := &Agent{http: ports[4*i], lan: ports[4*i+1], wan: ports[4*i+2], rpc: ports[4*i+3], Server: i < cfg.Servers}
		if a.Server {
			a.Name = fmt.Sprintf("%s-s%d", c.DC, i)
			c.Servers = append(c.Servers, a)
			join = append(join, fmt.Sprintf("-retry-join=127.0.0.1:%d", a.lan))
		} else {
			a.Name = fmt.Sprintf("%s-c%d", c.DC, i-cfg.Servers)
			c.Clients = append(c.Clients, a)
		}
	}
	for _, a := range c.all() {
		a.log = filepath.Join(dir, a.Name+".log")
		a.args = []string{"agent", "-datacenter=" + c.DC, "-node=" + a.Name,
			"-data-dir=" + filepath.Join(dir, a.Name), "-bind=127.0.0.1", "-advertise=127.0.0.1",
			"-client=127.0.0.1", fmt.Sprintf("-http-port=%d", a.http), fmt.Sprintf("-serf-lan-port=%d", a.lan),
			"-dns-port=-1", "-grpc-port=-1", "-grpc-tls-port=-1", "-retry-interval=1s", "-log-level=warn",
			"-hcl=disable_update_check = true", "-hcl=performance { raft_multiplier = 1 }"}
		a.args = append(a.args, join...)
		if a.Server {
			// A configuration directory RefuseWrites writes into and
			// has the server reload.
			if err := os.MkdirAll(a.configDir(dir), 0o755); err != nil {
				c.Close()
				return nil, err
			}
			a.args = append(a.args, "-server", fmt.Sprintf("-bootstrap-expect=%d", cfg.Servers), "-config-dir="+a.configDir(dir),
				fmt.Sprintf("-serf-wan-port=%d", a.wan), fmt.Sprintf("-server-port=%d", a.rpc))
			for _, w := range cfg.JoinWAN {
				a.args = append(a.args, "-retry-join-wan="+w)
			}
		} else {
			a.args = append(a.args, "-serf-wan-port=-1", fmt.Sprintf("-server-port=%d", a.rpc))
		}
		if err := c.Start(a); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(ctx); err != nil {
		if a := c.exited(); a != nil && a.logHas("address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		c.Close()
		return nil, err
	}
	return c, nil
}

// exited returns an agent whose process ended without Kill, or nil.
func (c *Cluster) exited() *Agent {
	for _, a := range c.all() {
		a.mu.Lock()
		p := a.proc
		a.mu.Unlock()
		if p == nil {
			continue
		}
		select {
		case <-p.Exited():
			return a
		default:
		}
	}
	return nil
}

// logHas reports whether a's output contains s.
func (a *Agent) logHas(s string) bool {
	data, _ := os.ReadFile(a.log)
	return strings.Contains(string(data), s)
}

func (c *Cluster) all() []*Agent { return append(append([]*Agent{}, c.Servers...), c.Clients...) }

// WANAddrs are the servers' serf WAN addresses, for another datacenter's
// Config.JoinWAN.
func (c *Cluster) WANAddrs() []string {
	var out []string
	for _, s := range c.Servers {
		out = append(out, fmt.Sprintf("127.0.0.1:%d", s.wan))
	}
	return out
}

// Start starts a's process (after Kill, on its data) without waiting.
func (c *Cluster) Start(a *Agent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc != nil {
		return fmt.Errorf("consulcluster: %s is running", a.Name)
	}
	p, err := proc.Start(exec.Command(c.bin, a.args...), a.log)
	if err != nil {
		return fmt.Errorf("consulcluster: %s: %w", a.Name, err)
	}
	a.proc = p
	return nil
}

// Kill ends a with SIGKILL (a crash) and waits for it.
func (c *Cluster) Kill(a *Agent) {
	a.mu.Lock()
	p := a.proc
	a.proc = nil
	a.mu.Unlock()
	if p != nil {
		p.Kill()
	}
}

// Running reports whether a's process runs.
func (a *Agent) Running() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.proc != nil
}

// Leader returns the server that leads the datacenter now.
func (c *Cluster) Leader(ctx context.Context) (*Agent, error) {
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		got, err := get(ctx, s.Addr(), "/v1/status/leader")
		if err != nil {
			continue
		}
		leader := strings.Trim(strings.TrimSpace(got), `"`)
		for _, l := range c.Servers {
			if leader == fmt.Sprintf("127.0.0.1:%d", l.rpc) {
				return l, nil
			}
		}
	}
	return nil, errors.New("consulcluster: no leader")
}

// WaitReady waits until every running agent knows the leader and sees
// every running agent as an alive LAN member.
//
// An agent that keeps seeing a running member as not alive for
// rejoinAfter is made to join that member (PUT /v1/agent/join), as an
// operator would with `consul join`, and again every rejoinAfter while it
// still does. Gossip alone may never correct such a view: an agent that
// holds a restarted member dead at an incarnation at least as high as
// the member's own drops the member's alive messages unanswered
// (hashicorp/memberlist#311), and on a loaded machine one server kept a
// restarted client agent failed that way for two minutes. A join
// exchanges full state with the member, which then refutes the stale
// record. Rejoins counts these joins.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var last error
	staleSince := map[[2]*Agent]time.Time{} // {observer, member}: first seen not alive, or last joined
	for {
		stale, err := c.ready(ctx)
		if err == nil && len(stale) == 0 {
			return nil
		}
		last = err
		if len(stale) > 0 {
			last = errors.Join(fmt.Errorf("not alive: %v", stale), err)
		}
		// Made afresh from this look: a view that came right is forgotten.
		now, next := time.Now(), make(map[[2]*Agent]time.Time, len(stale))
		for _, s := range stale {
			since, ok := staleSince[s.key()]
			if !ok {
				since = now
			} else if now.Sub(since) >= rejoinAfter {
				since = now
				c.rejoin(ctx, s)
			}
			next[s.key()] = since
		}
		staleSince = next
		// An agent that died will not become ready: say so now, not at
		// the deadline.
		if a := c.exited(); a != nil {
			return fmt.Errorf("consulcluster %s: %s: %w\n%s", c.DC, a.Name, ErrExited, c.Logs(800))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consulcluster %s not ready: %w (last: %v; re-joins so far: %d)\n%s",
				c.DC, ctx.Err(), last, c.Rejoins(), c.Logs(800))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rejoinAfter is how long WaitReady lets gossip bring a running member
// alive into an agent's view before it makes the agent join the member.
// Unloaded, a restarted agent is seen alive everywhere within a second.
const rejoinAfter = 5 * time.Second

// staleView is a running member that a running agent does not see alive.
type staleView struct {
	observer, member *Agent
	status           string // serf's status of member in observer's view
}

func (s staleView) key() [2]*Agent { return [2]*Agent{s.observer, s.member} }

func (s staleView) String() string {
	return fmt.Sprintf("%s sees %s %s", s.observer.Name, s.member.Name, s.status)
}

// rejoin makes s.observer join s.member's LAN address. A failed join is
// left to the next try: WaitReady judges by the members seen.
func (c *Cluster) rejoin(ctx context.Context, s staleView) {
	c.rejoins.Add(1)
	_, _ = call(ctx, http.MethodPut, s.observer.Addr(), fmt.Sprintf("/v1/agent/join/127.0.0.1:%d", s.member.lan), 5*time.Second)
}

// Rejoins is how many times WaitReady made an agent join a member it did
// not see alive (see WaitReady).
func (c *Cluster) Rejoins() int { return int(c.rejoins.Load()) }

// ready returns nil, nil once every running agent knows the leader and
// sees every running agent alive. Otherwise it returns the views that lack
// a running member, and the first agent that does not know the leader or
// cannot say (still looking at every other agent's view, so that an agent
// nobody sees, which knows no leader either, is found).
func (c *Cluster) ready(ctx context.Context) ([]staleView, error) {
	running := map[string]*Agent{}
	for _, a := range c.all() {
		if a.Running() {
			running[a.Name] = a
		}
	}
	var stale []staleView
	var first error
	for _, a := range c.all() {
		if running[a.Name] == nil {
			continue
		}
		status, err := a.view(ctx)
		if err != nil {
			first = cmp.Or(first, err)
			continue
		}
		for _, m := range c.all() {
			if running[m.Name] == nil {
				continue
			}
			if st, ok := status[m.Name]; !ok || st != serfAlive {
				name := "unknown"
				if ok {
					name = serfStatus(st)
				}
				stale = append(stale, staleView{observer: a, member: m, status: name})
			}
		}
	}
	return stale, first
}

// view returns the serf status of every LAN member a sees, by name; an
// error if a cannot say or knows no leader.
func (a *Agent) view(ctx context.Context) (map[string]int, error) {
	l, err := get(ctx, a.Addr(), "/v1/status/leader")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	if strings.Trim(strings.TrimSpace(l), `"`) == "" {
		return nil, fmt.Errorf("%s: no leader", a.Name)
	}
	got, err := get(ctx, a.Addr(), "/v1/agent/members")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Name, err)
	}
	var members []member
	if err := json.Unmarshal([]byte(got), &members); err != nil {
		return nil, fmt.Errorf("%s: members: %w", a.Name, err)
	}
	status := map[string]int{}
	for _, m := range members {
		status[m.Name] = m.Status
	}
	return status, nil
}

// member is one entry of /v1/agent/members.
type member struct {
	Name   string
	Status int
}

// serfAlive is a member's Status while serf sees it alive.
const serfAlive = 1

// serfStatus names a member's Status as serf does.
func serfStatus(s int) string {
	names := []string{"none", "alive", "leaving", "left", "failed"}
	if s >= 0 && s < len(names) {
		return names[s]
	}
	return fmt.Sprintf("status %d", s)
}

// Logs returns the tail (n bytes each) of every agent's output.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	for _, a := range c.all() {
		data, _ := os.ReadFile(a.log)
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "--- %s ---\n%s\n", a.Name, data)
	}
	return b.String()
}

func (a *Agent) configDir(dir string) string { return filepath.Join(dir, a.Name+".d") }

// refuseWrites is the request limit RefuseWrites sets: every write RPC a
// server receives is refused ("rate limit exceeded"), reads go on.
const refuseWrites = `limits { request_limits { mode = "enforcing" read_rate = -1 write_rate = 0 } }`

// RefuseWrites makes every running server refuse write RPCs, or take
// them again, by writing Consul's request limits into its configuration
// and reloading it. Reads still answer and the agents notice nothing: a
// write an agent makes meanwhile (its sync of a registration) fails as it
// does when the servers have no leader.
func (c *Cluster) RefuseWrites(ctx context.Context, refuse bool) error {
	body := ""
	if refuse {
		body = refuseWrites
	}
	for _, s := range c.Servers {
		if !s.Running() {
			continue
		}
		if err := os.WriteFile(filepath.Join(s.configDir(c.dir), "limits.hcl"), []byte(body+"\n"), 0o644); err != nil {
			return fmt.Errorf("consulcluster: %w", err)
		}
		if _, err := call(ctx, http.MethodPut, s.Addr(), "/v1/agent/reload", 10*time.Second); err != nil {
			return fmt.Errorf("consulcluster: reload %s: %w", s.Name, err)
		}
	}
	return nil
}

// LogCount is how often s occurs in a's output so far.
func (a *Agent) LogCount(s string) int {
	data, _ := os.ReadFile(a.log)
	return strings.Count(string(data), s)
}

// Close kills every agent and removes the data. Idempotent.
func (c *Cluster) Close() {
	c.once.Do(func() {
		for _, a := range c.all() {
			c.Kill(a)
		}
		c.claimed.Close()
		_ = os.RemoveAll(c.dir)
	})
}

func get(ctx context.Context, addr, path string) (string, error) {
	return call(ctx, http.MethodGet, addr, path, 2*time.Second)
}

func call(ctx context.Context, method, addr, path string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

// WaitVoters waits until Consul's autopilot reports the datacenter
// healthy with every running server a voter. A server that comes back
// after it was failed rejoins Raft as a non-voter and is promoted only
// after autopilot's server_stabilization_time (10 s); until then losing
// one more server (another leader kill) loses quorum, and the survivors
// cannot elect a leader until a server returns. Faults that follow one
// another wait for this between them, as an operator restarting servers
// one by one waits for `consul operator autopilot state`.
func (c *Cluster) WaitVoters(ctx context.Context) error {
	var last string
	for {
		for _, s := range c.Servers {
			if !s.Running() {
				continue
			}
			got, err := get(ctx, s.Addr(), "/v1/operator/autopilot/health")
			if err != nil {
				last = err.Error()
				continue
			}
			var h struct {
				Healthy bool
				Servers []struct {
					Name    string
					Voter   bool
					Healthy bool
				}
			}
			if err := json.Unmarshal([]byte(got), &h); err != nil {
				last = err.Error()
				continue
			}
			voters := 0
			for _, sv := range h.Servers {
				if sv.Voter && sv.Healthy {
					voters++
				}
			}
			if h.Healthy && voters == c.running(c.Servers) {
				return nil
			}
			last = got
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consulcluster %s: not every server a healthy voter: %w (last: %s)", c.DC, ctx.Err(), last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *Cluster) running(as []*Agent) int {
	n := 0
	for _, a := range as {
		if a.Running() {
			n++
		}
	}
	return n
}

// WaitDatacenters waits until the datacenter's servers know every one of
// dcs over the WAN (the catalog lists them).
func (c *Cluster) WaitDatacenters(ctx context.Context, dcs ...string) error {
	for {
		got, err := get(ctx, c.Servers[0].Addr(), "/v1/catalog/datacenters")
		missing := ""
		for _, dc := range dcs {
			if err != nil || !strings.Contains(got, `"`+dc+`"`) {
				missing = dc
				break
			}
		}
		if missing == "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consulcluster %s: datacenter %s not joined: %w (last: %s %v)", c.DC, missing, ctx.Err(), got, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitNodeFailed waits until the servers have marked a's node failed
// (its serfHealth check critical): from then on every service registered
// with that agent is critical, never passing.
func (c *Cluster) WaitNodeFailed(ctx context.Context, a *Agent) error {
	for {
		for _, s := range c.Servers {
			if !s.Running() {
				continue
			}
			got, err := get(ctx, s.Addr(), "/v1/health/node/"+a.Name)
			if err == nil && strings.Contains(got, `"CheckID":"serfHealth"`) && strings.Contains(got, `"Status":"critical"`) {
				return nil
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consulcluster: node %s never marked failed: %w", a.Name, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
