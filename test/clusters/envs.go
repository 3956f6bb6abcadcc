package clusters

import (
	"context"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/consulcluster"
	"github.com/warren-mesh/warren/internal/etcdcluster"
)

// EtcdOptions are every process's settings on an etcdcluster: all member
// endpoints, and a request timeout of 2× the election timeout
// (docs/production.md) so an attempt stuck on a member that lost its
// leader is retried on another soon.
func EtcdOptions(c *etcdcluster.Cluster) []etcd.Option {
	return []etcd.Option{etcd.WithEndpoints(c.Endpoints()...), etcd.WithDialTimeout(2 * time.Second),
		etcd.WithRequestTimeout(2 * time.Second), etcd.WithBackoff(100*time.Millisecond, time.Second)}
}

// EtcdEnv gives every backend and the caller a Registry with EtcdOptions.
// Close the returned discovery Registry when done.
func EtcdEnv(ctx context.Context, c *etcdcluster.Cluster) (Env, error) {
	open := func(ctx context.Context, _ int) (registry.Registry, error) {
		return etcd.New(ctx, EtcdOptions(c)...)
	}
	d, err := open(ctx, -1)
	if err != nil {
		return Env{}, err
	}
	return Env{Open: open, Discovery: d}, nil
}

// ConsulOptions are every backend's settings: the agents (own first), the
// default 10 s TTL check (heartbeat every 3.3 s), short retries. A 3 s TTL
// flapped critical during leader elections on a loaded machine: the agent
// stalls check updates while it cannot sync (docs/production.md).
func ConsulOptions(addrs ...string) []consul.Option {
	return []consul.Option{consul.WithAddresses(addrs...), consul.WithTTLCheck(10 * time.Second),
		consul.WithRetryBackoff(100*time.Millisecond, time.Second), consul.WithRequestTimeout(2 * time.Second)}
}

// ConsulEnv homes backend i on client agent i%2 with the other as
// failover; the caller's discovery lists both agents, agent 0 first.
// Close the returned discovery Registry when done.
func ConsulEnv(ctx context.Context, c *consulcluster.Cluster) (Env, error) {
	agents := func(i int) []string {
		home, other := c.Clients[i%2], c.Clients[(i+1)%2]
		return []string{home.Addr(), other.Addr()}
	}
	d, err := consul.New(ctx, consul.WithAddresses(agents(0)...))
	if err != nil {
		return Env{}, err
	}
	return Env{Discovery: d, Open: func(ctx context.Context, i int) (registry.Registry, error) {
		return consul.New(ctx, ConsulOptions(agents(i)...)...)
	}}, nil
}

// EtcdLeaderKill SIGKILLs the current leader and restarts it on repair.
func EtcdLeaderKill(ctx context.Context, c *etcdcluster.Cluster) (Fault, error) {
	l, err := c.Leader(ctx)
	if err != nil {
		return Fault{}, err
	}
	return Fault{Name: "leader-kill",
		Break: func(context.Context) error { c.Kill(l); return nil },
		Repair: func(ctx context.Context) error {
			if err := c.Restart(l); err != nil {
				return err
			}
			return c.WaitHealthy(ctx)
		}}, nil
}

// ConsulLeaderKill SIGKILLs the Raft leader and restarts it on repair; the
// backend added during the fault is homed on agent 1. Repair ends once the
// restarted server is a voter again, so a next kill leaves a quorum (see
// consulcluster.WaitVoters: a kill sooner stalled the bench's third phase
// for its whole two minutes, the survivors unable to elect).
func ConsulLeaderKill(ctx context.Context, c *consulcluster.Cluster) (Fault, error) {
	l, err := c.Leader(ctx)
	if err != nil {
		return Fault{}, err
	}
	return Fault{Name: "leader-kill", Slot: 1,
		Break: func(context.Context) error { c.Kill(l); return nil },
		Repair: func(ctx context.Context) error {
			if err := c.Start(l); err != nil {
				return err
			}
			if err := c.WaitReady(ctx); err != nil {
				return err
			}
			return c.WaitVoters(ctx)
		}}, nil
}
