package faults

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/internal/tcpproxy"
	"github.com/warren-mesh/warren/internal/zk"
)

// userZnodes is where the user instances' ephemeral znodes live.
const userZnodes = "/warren/services/user"

// rawZK is a plain ZooKeeper client on the mesh's server, playing the
// operator; it connects directly, not through the server's proxy.
func rawZK(t *testing.T, m *mesh) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{m.ZooKeeper().DirectAddr()}, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietZK{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type quietZK struct{}

func (quietZK) Printf(string, ...any) {}

// zkRegistered reports whether every user instance in ins has its znode
// and says it is registered on /readyz (its registrar's own view).
func zkRegistered(c *zk.Conn, ins ...*devmesh.Instance) bool {
	kids, _, err := c.Children(userZnodes)
	if err != nil {
		return false
	}
	have := map[string]bool{}
	for _, k := range kids {
		have[k] = true
	}
	for _, in := range ins {
		if !have[in.ID()] || readyz(in.Registered.Endpoints[0]) != http.StatusOK {
			return false
		}
	}
	return true
}

func awaitZKRegistered(c *zk.Conn, timeout time.Duration, ins ...*devmesh.Instance) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if zkRegistered(c, ins...) {
			return time.Now(), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("instances not registered within %s", timeout)
}

// Scenario 13. ZooKeeper restarts under load (down about a second, then up
// on the same data): sessions are in its snapshot, so every service's
// session — and its ephemeral znode — survives; the services stay
// registered, the client sees no error, and its watches are live after the
// restart: an instance started then is in its set within TTL + 2 s of
// being ready.
func TestZooKeeperRestart_SessionsSurvive_NoClientErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: restarts ZooKeeper")
	}
	// Sessions of 10 s, not the suite's 3 s: ZooKeeper's session tracker
	// starts counting when the server loads its snapshot, before it serves,
	// and under two loaded test runs at once the JVM took about 5 s from
	// there to serving (sessions expired at 3 s, seen twice): a restart
	// that long is not "about a second" any more. The claim — sessions
	// survive, no client error — is unchanged.
	const ttl = 10 * time.Second
	m := startMeshTTL(t, "zookeeper", ttl)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("zookeeper log (tail):\n%s", tail(m.ZooKeeper().Log(), 8000))
		}
	})
	c := rawZK(t, m)
	one, two := m.Instance("user", 1), m.Instance("user", 2)
	w := watchSet(t, m.Discovery(), "user")
	l := newUserLoad(t, m.Discovery())
	run := l.start(60 * time.Second)
	time.Sleep(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	down := time.Now()
	if err := m.ZooKeeper().Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := m.ZooKeeper().Start(ctx); err != nil {
		run.Stop()
		run.Wait()
		t.Fatal(err)
	}
	back := time.Now()
	at, err := awaitZKRegistered(c, ttl+10*time.Second, one, two)
	var seen time.Duration
	if err == nil {
		third, serr := m.StartInstance("user", devmesh.InstanceOptions{})
		if serr != nil {
			t.Fatal(serr)
		}
		started := time.Now()
		if err := m.WaitReady(ctx, third); err != nil {
			t.Fatal(err)
		}
		ready := time.Now()
		var when time.Time
		if when, err = w.await(started, 10*time.Second, has(third.ID())); err == nil {
			seen = max(0, when.Sub(ready))
		}
	}
	time.Sleep(time.Second)
	run.Stop()
	res := run.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("zookeeper restart (down %.1fs): both instances registered %.2fs after it served again (session timeout %s); a new instance reached the client %.2fs after it was ready; load %s",
		back.Sub(down).Seconds(), at.Sub(back).Seconds(), ttl, seen.Seconds(), res)
	checkNoErrors(t, "zookeeper restart", res, 6*time.Second)
	if took := at.Sub(back); took > ttl+2*time.Second {
		t.Errorf("registered again after %s; want ≤ TTL + 2s = %s", took.Round(time.Millisecond), ttl+2*time.Second)
	}
	if seen > ttl+2*time.Second {
		t.Errorf("an instance started after the restart reached the client after %s; want ≤ TTL + 2s", seen.Round(time.Millisecond))
	}
}

// Scenario 14. One instance is cut off from ZooKeeper (a partition between
// it and ZooKeeper only) for longer than its session timeout: ZooKeeper
// expires its session and its znode goes, so every client drops it and the
// load moves to the others with no error; its /readyz says it is not
// registered; once the partition heals it gets a new session and is
// registered again — znode, /readyz and the client's set — within
// reregisterBound.
func TestZooKeeperSessionExpiry_InstanceLeavesAndReturns_NoClientErrors(t *testing.T) {
	m := startMesh(t, "zookeeper")
	c := rawZK(t, m)
	proxy, err := tcpproxy.New(m.ZooKeeper().DirectAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	third, err := m.StartInstance("user", devmesh.InstanceOptions{Env: []string{"WARREN_ZOOKEEPER_SERVERS=" + proxy.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx, third); err != nil {
		t.Fatal(err)
	}
	w := watchSet(t, m.Discovery(), "user")
	if _, err := w.await(time.Now(), 10*time.Second, has("user-1", "user-2", third.ID())); err != nil {
		t.Fatal(err)
	}
	l := newUserLoad(t, m.Discovery())
	run := l.start(60 * time.Second)
	time.Sleep(time.Second)

	proxy.Block()
	cut := time.Now()
	gone, gerr := w.await(cut, ttl+10*time.Second, lacks(third.ID()))
	// The instance presumes its session expired one session timeout after
	// it lost contact, and says so.
	notReady := false
	for deadline := time.Now().Add(ttl + 10*time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if readyz(third.Registered.Endpoints[0]) != http.StatusOK {
			notReady = true
			break
		}
	}
	proxy.Unblock()
	healed := time.Now()
	at, rerr := awaitZKRegistered(c, 30*time.Second, third)
	var seen time.Time
	if rerr == nil {
		seen, rerr = w.await(healed, 30*time.Second, has("user-1", "user-2", third.ID()))
	}
	time.Sleep(time.Second)
	run.Stop()
	res := run.Wait()
	if gerr != nil {
		t.Fatalf("the cut-off instance stayed in the client's set: %v", gerr)
	}
	if rerr != nil {
		t.Fatalf("after the partition healed: %v", rerr)
	}
	t.Logf("zookeeper session expiry: %s left the client's set %.2fs after the cut (session timeout %s), registered again %.2fs after the partition healed, in the client's set after %.2fs; load %s",
		third.ID(), gone.Sub(cut).Seconds(), ttl, at.Sub(healed).Seconds(), seen.Sub(healed).Seconds(), res)
	checkNoErrors(t, "zookeeper session expiry", res, 10*time.Second)
	if !notReady {
		t.Errorf("%s kept answering /readyz 200 while its session was expired", third.ID())
	}
	if took := gone.Sub(cut); took > ttl+2*time.Second {
		t.Errorf("left discovery %s after the cut; want ≤ session timeout + 2s = %s", took.Round(time.Millisecond), ttl+2*time.Second)
	}
	if took := at.Sub(healed); took > reregisterBound {
		t.Errorf("registered again %s after the partition healed; want ≤ %s", took.Round(time.Millisecond), reregisterBound)
	}
}
