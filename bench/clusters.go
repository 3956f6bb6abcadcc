package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/warren-mesh/warren/internal/consulcluster"
	"github.com/warren-mesh/warren/internal/etcdcluster"
	"github.com/warren-mesh/warren/test/clusters"
)

// clusterRuns is how many leader kills each registry gets.
const clusterRuns = 3

// benchClusters measures leader kill → recovery on a 3-member etcd
// cluster (member processes, election timeout 1 s, request timeout 2 s)
// and a 3-server Consul datacenter with 2 client agents, each under
// 200 req/s through a Warren client, exactly as test/clusters runs it:
// the time from the SIGKILL to the first successful Register of a new
// instance and to the first call routed to it, and the failed calls,
// duplicate and missing instances during the whole phase.
func benchClusters(ctx context.Context, rep *report) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := clusterEtcd(ctx, rep); err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	if err := clusterConsul(ctx, rep); err != nil {
		return fmt.Errorf("consul: %w", err)
	}
	return nil
}

func clusterEtcd(ctx context.Context, rep *report) error {
	c, err := etcdcluster.Start(ctx, 3)
	if err != nil {
		return err
	}
	defer c.Close()
	env, err := clusters.EtcdEnv(ctx, c)
	if err != nil {
		return err
	}
	defer env.Discovery.Close()
	return leaderKills(ctx, rep, "etcd", env, func(ctx context.Context) (clusters.Fault, error) {
		return clusters.EtcdLeaderKill(ctx, c)
	})
}

func clusterConsul(ctx context.Context, rep *report) error {
	c, err := consulcluster.Start(ctx, consulcluster.Config{Servers: 3, Clients: 2})
	if err != nil {
		return err
	}
	defer c.Close()
	env, err := clusters.ConsulEnv(ctx, c)
	if err != nil {
		return err
	}
	defer env.Discovery.Close()
	err = leaderKills(ctx, rep, "consul", env, func(ctx context.Context) (clusters.Fault, error) {
		return clusters.ConsulLeaderKill(ctx, c)
	})
	if err != nil {
		// The agents' own account of the phase, before Close removes it.
		return fmt.Errorf("%w\n%s", err, c.Logs(6000))
	}
	return nil
}

// leaderKills runs clusterRuns leader-kill phases on one mesh and adds the
// median and worst of each figure.
func leaderKills(ctx context.Context, rep *report, name string, env clusters.Env, fault func(context.Context) (clusters.Fault, error)) error {
	m, err := clusters.NewMesh(ctx, env, 3)
	if err != nil {
		return err
	}
	defer m.Close()
	var register, routed []float64
	errs, bad, calls := 0, 0, 0
	for range clusterRuns {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		f, err := fault(pctx)
		if err != nil {
			cancel()
			return err
		}
		fig, err := m.Run(pctx, f)
		cancel()
		if err != nil {
			return fmt.Errorf("%v: %w", fig, err)
		}
		register = append(register, fig.Register.Seconds())
		routed = append(routed, fig.Routed.Seconds())
		errs += fig.Errors
		calls += fig.Calls
		bad += fig.Duplicates + fig.Missing
	}
	note := fmt.Sprintf("%d kills under %d req/s; median (max %.2f s)", clusterRuns, clusters.Rate, slices.Max(register))
	rep.add(row{Suite: "clusters", Metric: name + " leader kill → first Register", Value: median(register), Unit: "s", Note: note})
	note = fmt.Sprintf("%d kills; median (max %.2f s)", clusterRuns, slices.Max(routed))
	rep.add(row{Suite: "clusters", Metric: name + " leader kill → first routed call", Value: median(routed), Unit: "s", Note: note})
	rep.judged(row{Suite: "clusters", Metric: name + " leader kill: failed calls", Value: float64(errs), Unit: "calls",
		Goal: "0", Note: fmt.Sprintf("of %d", calls)}, errs == 0)
	rep.judged(row{Suite: "clusters", Metric: name + " leader kill: duplicate or missing instances", Value: float64(bad), Unit: "events",
		Goal: "0"}, bad == 0)
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
