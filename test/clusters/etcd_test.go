package clusters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/etcdcluster"
)

// TestEtcdCluster_Faults runs five phases on one 3-member cluster (member
// processes, TTL 10 s, election timeout 1 s, request timeout 2 s) under
// 200 req/s:
//
//   - leader-kill: SIGKILL the leader; restart it after.
//   - follower-kill: SIGKILL a follower; restart it after.
//   - partition: cut the leader off from both followers (peer proxy); heal.
//   - restart-all: SIGKILL all three members and start them again at once.
//   - replace: a follower crashes; it is removed and a new member (new ID,
//     empty data) joins on its addresses.
//
// In each, a new backend registers and the previous phase's withdraws
// while the fault lasts. Pass criterion of every phase: 0 failed calls; no
// event lists an instance twice; no event lacks a stable backend (their
// registrations survive); the new backend's Register returns and it serves
// a routed call (bounded by the phase deadline); the instancer then shows
// exactly the expected set (no missed change), before and after repair;
// and etcd itself holds exactly those records.
func TestEtcdCluster_Faults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c, err := etcdcluster.Start(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	env, err := EtcdEnv(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Discovery.Close() })
	m, err := NewMesh(ctx, env, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)

	leader := func(ctx context.Context) int {
		l, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	follower := func(ctx context.Context) int { return (leader(ctx) + 1) % 3 }
	restart := func(i int) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := c.Restart(i); err != nil {
				return err
			}
			return c.WaitHealthy(ctx)
		}
	}
	var victim int
	phases := []func(ctx context.Context) Fault{
		func(ctx context.Context) Fault {
			f, err := EtcdLeaderKill(ctx, c)
			if err != nil {
				t.Fatal(err)
			}
			return f
		},
		func(ctx context.Context) Fault {
			victim = follower(ctx)
			return Fault{Name: "follower-kill", Break: func(context.Context) error {
				c.Kill(victim)
				return portHeld(c.Endpoints()[victim])
			}, Repair: restart(victim)}
		},
		func(ctx context.Context) Fault {
			victim = leader(ctx)
			return Fault{Name: "partition-leader",
				Break: func(ctx context.Context) error { return c.Partition(ctx, victim) },
				Repair: func(ctx context.Context) error {
					if err := c.Heal(ctx, victim); err != nil {
						return err
					}
					return c.WaitHealthy(ctx)
				}}
		},
		func(context.Context) Fault {
			return Fault{Name: "restart-all",
				Break: func(context.Context) error {
					for i := range 3 {
						c.Kill(i)
					}
					for i := range 3 {
						if err := c.Restart(i); err != nil {
							return err
						}
					}
					return nil
				},
				Repair: c.WaitHealthy}
		},
		func(ctx context.Context) Fault {
			victim = follower(ctx)
			return Fault{Name: "replace-member",
				Break: func(context.Context) error { c.Kill(victim); return nil },
				Repair: func(ctx context.Context) error {
					oldID, newID, err := c.Replace(ctx, victim)
					if err == nil && oldID == newID {
						err = fmt.Errorf("member ID %x did not change", oldID)
					}
					return err
				}}
		},
	}
	runPhases(t, ctx, m, func() string { return c.Logs(3000) },
		func(ctx context.Context) error { return etcdHolds(ctx, c, m.ids()) }, phases...)
}

// etcdHolds checks etcd's own view: exactly one record per expected ID.
func etcdHolds(ctx context.Context, c *etcdcluster.Cluster, ids []string) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.Get(gctx, "/"+etcd.DefaultPrefix+"/services/"+Service+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	var got []string
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		got = append(got, k[strings.LastIndex(k, "/")+1:])
	}
	want := slices.Clone(ids)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		return errors.New(fmt.Sprint("etcd holds ", got, ", want ", want))
	}
	return nil
}
