package faults

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

// Scenario 11. The Consul agent restarts under load (a fresh -dev agent:
// nothing registered survives): every service is back in the passing set
// within TTL + 2 s of the agent serving again, and the client, serving
// from its cached set meanwhile, sees no error.
func TestConsulAgentRestart_BackInPassingSetWithinTTLPlus2s_NoClientErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: restarts the Consul agent")
	}
	m := startMesh(t, "consul")
	cc, err := api.NewClient(&api.Config{Address: m.Consul().Addr()})
	if err != nil {
		t.Fatal(err)
	}
	passing := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		entries, _, err := cc.Health().Service("user", "", true, (&api.QueryOptions{}).WithContext(ctx))
		if err != nil {
			return false
		}
		ids := map[string]bool{}
		for _, e := range entries {
			ids[e.Service.ID] = true
		}
		return ids["user-1"] && ids["user-2"]
	}
	if !passing() {
		t.Fatal("user-1 and user-2 not passing before the restart")
	}
	l := newUserLoad(t, m.Discovery())
	run := l.start(60 * time.Second)
	time.Sleep(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	down := time.Now()
	if err := m.Consul().Stop(); err != nil {
		t.Fatal(err)
	}
	if err := m.Consul().Start(ctx); err != nil {
		run.Stop()
		run.Wait()
		t.Fatal(err)
	}
	back := time.Now()
	var at time.Time
	for time.Since(back) < 30*time.Second {
		if passing() {
			at = time.Now()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	run.Stop()
	res := run.Wait()
	if at.IsZero() {
		t.Fatal("user-1 and user-2 not back in the passing set within 30s of the agent serving")
	}
	took := at.Sub(back)
	t.Logf("consul agent restart (down %.1fs): both instances passing %.2fs after the agent served again (TTL %s); load %s",
		back.Sub(down).Seconds(), took.Seconds(), ttl, res)
	checkNoErrors(t, "consul agent restart", res)
	if took > ttl+2*time.Second {
		t.Errorf("back in the passing set after %s; want ≤ TTL + 2s = %s", took.Round(time.Millisecond), ttl+2*time.Second)
	}
}
