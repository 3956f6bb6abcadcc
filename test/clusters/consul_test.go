package clusters

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

// consulOptions are every backend's: a 3 s TTL check (heartbeat every
// second), short retries.
func consulOptions(addrs ...string) []consul.Option {
	return []consul.Option{consul.WithAddresses(addrs...), consul.WithTTLCheck(3 * time.Second),
		consul.WithRetryBackoff(100*time.Millisecond, time.Second), consul.WithRequestTimeout(2 * time.Second)}
}

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
	agents := func(i int) []string {
		home, other := c.Clients[i%2], c.Clients[(i+1)%2]
		return []string{home.Addr(), other.Addr()}
	}
	d, err := consul.New(ctx, consul.WithAddresses(agents(0)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	env := Env{Discovery: d, Open: func(ctx context.Context, i int) (registry.Registry, error) {
		return consul.New(ctx, consulOptions(agents(i)...)...)
	}}
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
	phases := []func(ctx context.Context) Fault{
		func(ctx context.Context) Fault {
			l, err := c.Leader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return Fault{Name: "leader-kill", Slot: 1,
				Break: func(context.Context) error { c.Kill(l); return nil }, Repair: restart(l)}
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
					return restart(a)(ctx)
				}}
		},
	}
	for _, phase := range phases {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		f := phase(pctx)
		t.Run(f.Name, func(t *testing.T) {
			fig, err := m.Run(pctx, f)
			t.Logf("%v", fig)
			if err != nil {
				t.Fatalf("%v\n%s", err, c.Logs(1500))
			}
			if err := fig.Check(); err != nil {
				t.Fatal(err)
			}
		})
		pcancel()
		if t.Failed() {
			return
		}
	}
}
