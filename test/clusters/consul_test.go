package clusters

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

func startConsul(t *testing.T, ctx context.Context, cfg consulcluster.Config) *consulcluster.Cluster {
	t.Helper()
	if consultest.Skipped() {
		t.Skip("WARREN_SKIP_CONSUL=1")
	}
	c, err := consulcluster.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestConsulCluster_Faults runs two phases on one datacenter of 3 servers
// and 2 client agents under 200 req/s. Backends alternate their home
// agent and list the other as failover (WithAddresses); the client's
// registry lists both agents.
//
//   - leader-kill: SIGKILL the Raft leader; restart it after.
//   - agent-loss: SIGKILL client agent 0, home of backends b0 and b2 and of
//     the client's discovery; the new backend's home is that agent too.
//     Restart it after: registrations move back home.
//
// Pass criterion of each phase, as for etcd: 0 failed calls; no event
// lists an instance twice; no event lacks a stable backend; the new
// backend registers (on another agent if its own is dead) and serves a
// routed call; the instancer shows exactly the expected set during the
// fault and after repair.
func TestConsulCluster_Faults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := startConsul(t, ctx, consulcluster.Config{Servers: 3, Clients: 2})
	env, err := ConsulEnv(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Discovery.Close() })
	m, err := NewMesh(ctx, env, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	restart := func(a *consulcluster.Agent) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := c.Start(a); err != nil {
				return err
			}
			return c.WaitReady(ctx)
		}
	}
	phases := []func(context.Context) Fault{
		func(ctx context.Context) Fault {
			f, err := ConsulLeaderKill(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
		func(context.Context) Fault {
			a := c.Clients[0]
			return Fault{Name: "agent-loss", Slot: 0,
				Break: func(context.Context) error { c.Kill(a); return nil },
				Repair: func(ctx context.Context) error {
					// Only once the servers have failed the node are its
					// registrations critical: the stable backends homed
					// there must have moved to be still listed.
					if err := c.WaitNodeFailed(ctx, a); err != nil {
						return err
					}
					if err := m.Watcher.WaitFor(ctx, m.ids()...); err != nil {
						return fmt.Errorf("with the agent's node failed: %w", err)
					}
					if err := restart(a)(ctx); err != nil {
						return err
					}
					// Registrations come home, and the copies they leave go.
					return movedHome(ctx, a.Addr(), c.Clients[1].Addr(), "b0", "b2")
				}}
		},
	}
	runPhases(t, ctx, m, func() string { return c.Logs(1500) }, nil, phases...)
	// A repair whose restarted agent gossip did not bring back into
	// every view needed WaitReady's joins; say how many it made.
	t.Logf("consulcluster %s: WaitReady made %d joins of a member an agent did not see alive", c.DC, c.Rejoins())
}

// movedHome waits until the home agent holds every id and the other agent
// none of them.
func movedHome(ctx context.Context, home, other string, ids ...string) error {
	services := func(addr string) (map[string]*api.AgentService, error) {
		cl, err := api.NewClient(&api.Config{Address: addr})
		if err != nil {
			return nil, err
		}
		return cl.Agent().ServicesWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	}
	for {
		h, herr := services(home)
		o, oerr := services(other)
		done := herr == nil && oerr == nil
		for _, id := range ids {
			if h[id] == nil || o[id] != nil {
				done = false
			}
		}
		if done {
			return nil
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return fmt.Errorf("registrations %v never moved back home (home %v, other %v)", ids, keys(h), keys(o))
		}
	}
}

func keys(m map[string]*api.AgentService) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
