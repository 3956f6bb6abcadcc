package etcdcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/internal/freeport"
	"github.com/warren-mesh/warren/internal/proc"
)

// Cluster is a running etcd cluster of member processes. Its methods are
// safe for concurrent use; Close stops every process it started.
type Cluster struct {
	exe   string
	dir   string
	token string
	net   *network
	admin *clientv3.Client

	mu      sync.Mutex
	members []*member
	cut     map[int]uint64 // slots partitioned, with the member ID cut off
	closed  bool
}

// member is one slot of the cluster: its ports stay the same across
// restarts and replacements, its name and data change on replacement.
type member struct {
	slot       int
	name       string
	gen        int
	clientAddr string // clients dial this, directly
	peerAddr   string // the member's own peer listener
	proxy      *peerProxy
	proxyAddr  string // the peer address every other member uses
	state      string // initial-cluster-state for the next start
	initial    string // initial-cluster for the next start

	proc *proc.Proc      // nil while stopped
	held freeport.Keeper // holds the client and peer ports while stopped
}

func (m *member) dataDir(root string) string {
	return filepath.Join(root, m.name)
}

// Start runs an n-member cluster and waits (bounded by ctx) until it has
// a leader that every member follows.
func Start(ctx context.Context, n int) (*Cluster, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("etcdcluster: %w", err)
	}
	dir, err := os.MkdirTemp("", "warren-etcdcluster-")
	if err != nil {
		return nil, fmt.Errorf("etcdcluster: %w", err)
	}
	c := &Cluster{exe: exe, dir: dir, token: filepath.Base(dir), net: newNetwork(), cut: map[int]uint64{}}
	var initial []string
	for i := range n {
		ports, err := freePorts(2)
		if err != nil {
			c.Close()
			return nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("etcdcluster: %w", err)
		}
		m := &member{slot: i, name: fmt.Sprintf("m%d", i), clientAddr: ports[0], peerAddr: ports[1],
			proxyAddr: ln.Addr().String(), state: "new"}
		m.proxy = startPeerProxy(c.net, ln, m.peerAddr)
		// Held (and claimed) from the pick: members start one after
		// another, and the last one's ports would otherwise be free for
		// the others' starts.
		m.held.Hold(m.clientAddr, m.peerAddr)
		c.members = append(c.members, m)
		initial = append(initial, m.name+"=http://"+m.proxyAddr)
	}
	for _, m := range c.members {
		m.initial = strings.Join(initial, ",")
		if err := c.start(m); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.admin, err = clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("etcdcluster: admin client: %w", err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.learnIDs(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Endpoints are the members' client addresses, "127.0.0.1:port", in slot
// order. They do not change when a member restarts or is replaced.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.members))
	for i, m := range c.members {
		out[i] = m.clientAddr
	}
	return out
}

// start launches slot m's process; it does not wait for it to serve.
func (c *Cluster) start(m *member) error {
	spec, _ := json.Marshal(memberSpec{
		Name: m.name, Dir: m.dataDir(c.dir), ClientURL: "http://" + m.clientAddr,
		PeerListenURL: "http://" + m.peerAddr, PeerAdvertise: "http://" + m.proxyAddr,
		InitialCluster: m.initial, State: m.state, Token: c.token,
	})
	cmd := exec.Command(c.exe)
	cmd.Env = append(os.Environ(), EnvMember+"="+string(spec))
	m.held.Release() // just before the member binds them
	p, err := proc.Start(cmd, filepath.Join(c.dir, fmt.Sprintf("slot%d.log", m.slot)))
	if err != nil {
		return fmt.Errorf("etcdcluster: %s: %w", m.name, err)
	}
	c.mu.Lock()
	m.proc = p
	c.mu.Unlock()
	return nil
}

// Kill ends slot i's process with SIGKILL (a crash) and waits for it; its
// ports are then held (freeport.Hold) until it starts again, so no other
// process takes one meanwhile. Killing a stopped member does nothing.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	m := c.members[i]
	p := m.proc
	m.proc = nil
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.Kill()
	// Best effort: a port not held is only exposed as it was before, and
	// a restart that finds it taken says so.
	m.held.Hold(m.clientAddr, m.peerAddr)
}

// Restart starts slot i's process again on its data and ports (after
// Kill) without waiting for it; WaitHealthy waits.
func (c *Cluster) Restart(i int) error {
	c.mu.Lock()
	m := c.members[i]
	running := m.proc != nil
	c.mu.Unlock()
	if running {
		return fmt.Errorf("etcdcluster: %s is running", m.name)
	}
	return c.start(m)
}

// Running reports whether slot i's process is running.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].proc != nil
}

// Leader returns the slot of the current leader, as a running member that
// says it is the leader reports it.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	for i, ep := range c.Endpoints() {
		if !c.Running(i) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.admin.Status(sctx, ep)
		cancel()
		if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, errors.New("etcdcluster: no member says it is the leader")
}

// WaitHealthy waits until every running member answers and names the same
// leader, and a linearizable read succeeds.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdcluster: not healthy: %w (last: %v)\n%s", ctx.Err(), last, c.Logs(1500))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	var leader uint64
	for i, ep := range c.Endpoints() {
		if !c.Running(i) {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.admin.Status(sctx, ep)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("slot %d: %w", i, err)
		case st.Leader == 0:
			return fmt.Errorf("slot %d: no leader", i)
		case leader != 0 && st.Leader != leader:
			return fmt.Errorf("slot %d follows %x, another %x", i, st.Leader, leader)
		}
		leader = st.Leader
	}
	gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := c.admin.Get(clientv3.WithRequireLeader(gctx), "health")
	return err
}

// learnIDs tells each peer proxy the ID of the member behind it.
func (c *Cluster) learnIDs(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.admin.MemberList(lctx)
	if err != nil {
		return fmt.Errorf("etcdcluster: member list: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, mem := range resp.Members {
		for _, m := range c.members {
			if mem.Name == m.name {
				m.proxy.setMember(fmt.Sprintf("%x", mem.ID))
			}
		}
	}
	return nil
}

// MemberID returns the ID of the member now in slot i.
func (c *Cluster) MemberID(ctx context.Context, i int) (uint64, error) {
	c.mu.Lock()
	name := c.members[i].name
	c.mu.Unlock()
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var resp *clientv3.MemberListResponse
	// A member without a leader (cut off) refuses at once; ask another.
	err := c.retry(lctx, func(ctx context.Context) error {
		var err error
		resp, err = c.admin.MemberList(clientv3.WithRequireLeader(ctx))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("etcdcluster: member list: %w", err)
	}
	for _, mem := range resp.Members {
		if mem.Name == name {
			return mem.ID, nil
		}
	}
	return 0, fmt.Errorf("etcdcluster: no member %s", name)
}

// Partition cuts slot i off from the other members: every peer message it
// sends or should receive is dropped, and its open raft streams end.
// Clients still reach it. Heal undoes it.
func (c *Cluster) Partition(ctx context.Context, i int) error {
	id, err := c.MemberID(ctx, i)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cut[i] = id
	c.mu.Unlock()
	c.net.setCut(fmt.Sprintf("%x", id), true)
	return nil
}

// Heal reconnects slot i.
func (c *Cluster) Heal(ctx context.Context, i int) error {
	c.mu.Lock()
	id, ok := c.cut[i]
	delete(c.cut, i)
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("etcdcluster: slot %d is not partitioned", i)
	}
	c.net.setCut(fmt.Sprintf("%x", id), false)
	return nil
}

// Replace crashes the member in slot i, removes it from the cluster, and
// adds a new member (new name, empty data, new member ID) on the same
// addresses, as an operator replacing a failed machine would. It returns
// the old and new IDs once the cluster is healthy again.
func (c *Cluster) Replace(ctx context.Context, i int) (oldID, newID uint64, err error) {
	if oldID, err = c.MemberID(ctx, i); err != nil {
		return 0, 0, err
	}
	c.Kill(i)
	if err := c.retry(ctx, func(ctx context.Context) error {
		_, err := c.admin.MemberRemove(ctx, oldID)
		return err
	}); err != nil {
		return oldID, 0, fmt.Errorf("etcdcluster: remove %x: %w", oldID, err)
	}
	c.mu.Lock()
	m := c.members[i]
	_ = os.RemoveAll(m.dataDir(c.dir))
	m.gen++
	m.name = fmt.Sprintf("m%d-%d", i, m.gen)
	c.mu.Unlock()
	var added *clientv3.MemberAddResponse
	if err := c.retry(ctx, func(ctx context.Context) error {
		var err error
		added, err = c.admin.MemberAdd(ctx, []string{"http://" + m.proxyAddr})
		return err
	}); err != nil {
		return oldID, 0, fmt.Errorf("etcdcluster: add: %w", err)
	}
	newID = added.Member.ID
	var initial []string
	for _, mem := range added.Members {
		name := mem.Name
		if mem.ID == newID {
			name = m.name
		}
		for _, u := range mem.PeerURLs {
			initial = append(initial, name+"="+u)
		}
	}
	c.mu.Lock()
	m.state, m.initial = "existing", strings.Join(initial, ",")
	c.mu.Unlock()
	m.proxy.setMember(fmt.Sprintf("%x", newID))
	if err := c.start(m); err != nil {
		return oldID, newID, err
	}
	return oldID, newID, c.WaitHealthy(ctx)
}

// retry runs f until it succeeds or ctx ends, each attempt bounded.
func (c *Cluster) retry(ctx context.Context, f func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		err := f(actx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Logs returns the tail (n bytes each) of every member's output.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	c.mu.Lock()
	slots := len(c.members)
	c.mu.Unlock()
	for i := range slots {
		data, _ := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("slot%d.log", i)))
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "--- slot %d ---\n%s\n", i, data)
	}
	return b.String()
}

// Close kills every member, stops the proxies and removes the data. It is
// idempotent.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	n := len(c.members)
	c.mu.Unlock()
	if c.admin != nil {
		c.admin.Close()
	}
	for i := range n {
		c.Kill(i)
		m := c.members[i]
		m.held.Close()
		m.proxy.close()
	}
	_ = os.RemoveAll(c.dir)
}

// freePorts returns n distinct free loopback addresses below the
// ephemeral range (freeport).
func freePorts(n int) ([]string, error) {
	addrs, err := freeport.Addrs(n)
	if err != nil {
		return nil, fmt.Errorf("etcdcluster: %w", err)
	}
	return addrs, nil
}
