package consul

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

// listedByServers reports whether the servers (asked through server's
// own HTTP API, not the agent that holds the instance) list id.
func listedByServers(t *testing.T, server, name, id string) bool {
	t.Helper()
	cl, err := api.NewClient(&api.Config{Address: server})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	entries, _, err := cl.Catalog().Service(name, "", (&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.ServiceID == id {
			return true
		}
	}
	return false
}

// syncCluster starts one server and one client agent, for the tests that
// make the agent's sync to the servers fail (RefuseWrites). The agents'
// logs go to the test's output if it fails.
func syncCluster(t *testing.T, ctx context.Context) (c *consulcluster.Cluster, agent, server *consulcluster.Agent) {
	t.Helper()
	needAgent(t)
	c, err := consulcluster.Start(ctx, consulcluster.Config{Servers: 1, Clients: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agents:\n%s", c.Logs(4000))
		}
		c.Close()
	})
	return c, c.Clients[0], c.Servers[0]
}

// registerListed registers inst with r and waits until the servers list it.
func registerListed(t *testing.T, ctx context.Context, r *Registry, server *consulcluster.Agent, inst registry.Instance) {
	t.Helper()
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, inst.ID+" listed by the servers", func() bool {
		return listedByServers(t, server.Addr(), inst.Name, inst.ID)
	})
}

// A registration the agent accepted but could not sync to the servers
// (here the servers refuse writes for a moment; in production they elect
// a leader, or the agent's server just died) is missing from the catalog
// until the agent's next change or full sync: Consul does not retry a
// failed sync on its own (agent/ae). A TTL update is a change that sets
// off a sync of whatever the agent has not synced, but with a long TTL
// the heartbeat comes late (20 s here, after the bound below). The
// registry asks the servers after each register call and beats every
// 0.5 s until they list it; it fails with that removed. Real agents: one server,
// one client agent.
func TestRegistry_ConfirmsTheServersListWhatTheAgentTook(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	c, agent, server := syncCluster(t, ctx)
	r := newRegistry(t, agent.Addr(), WithTTLCheck(time.Minute))

	first := registry.Instance{ID: "synced-1", Name: "synced", Endpoints: []string{"http://127.0.0.1:18093"}}
	registerListed(t, ctx, r, server, first)
	// The agent's join and the leader's election set off full syncs,
	// each staggered by up to 3 s; one coming after the refusal below
	// would sync the missed registration too and hide the registry's
	// doing.
	time.Sleep(4 * time.Second)

	if err := c.RefuseWrites(ctx, true); err != nil {
		t.Fatal(err)
	}
	missed := registry.Instance{ID: "missed-1", Name: "missed", Endpoints: []string{"http://127.0.0.1:18094"}}
	if err := r.Register(ctx, missed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the agent's sync of the new instance failed", func() bool {
		return agent.LogCount("failed to sync changes") >= 1
	})
	if listedByServers(t, server.Addr(), missed.Name, missed.ID) {
		t.Fatal("the servers list an instance they refused to write")
	}
	if err := c.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !holds(t, agent.Addr(), missed.ID) {
		t.Fatal("the agent does not hold the instance it accepted")
	}
	// A second or two (a confirm every 0.5 s), generously: far short of
	// the next heartbeat and of the agent's next full sync.
	eventually(t, 15*time.Second, "the servers list the instance the agent's sync missed", func() bool {
		return listedByServers(t, server.Addr(), missed.Name, missed.ID)
	})
}

// A deregistration the agent took but could not sync to the servers has
// no heartbeat behind it to set off another sync: the servers would list
// the instance, passing, until the agent's next full sync. Deregister
// waits for the servers to drop it and, when they keep listing it after
// a moment, removes it from the catalog itself. Real agents: one server,
// one client agent holding nothing else (no other heartbeat to sync it).
func TestRegistry_DeregisterRemovesWhatTheAgentsSyncLeftInTheCatalog(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	c, agent, server := syncCluster(t, ctx)
	r := newRegistry(t, agent.Addr(), WithTTLCheck(1500*time.Millisecond), WithDeregisterTimeout(20*time.Second))
	inst := registry.Instance{ID: "leaving-1", Name: "leaving", Endpoints: []string{"http://127.0.0.1:18095"}}
	registerListed(t, ctx, r, server, inst)
	time.Sleep(4 * time.Second) // the start's full syncs (see above) are past

	// The agent logs each failed sync more than once (its HTTP handler and
	// its anti-entropy both sync a deregistration), and the cluster's
	// start may have logged some: a failure is a count above the one
	// before the refusal.
	failed := agent.LogCount("failed to sync changes")
	if err := c.RefuseWrites(ctx, true); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Deregister(ctx, inst) }() // bounded by its 20 s timeout
	eventually(t, 30*time.Second, "the agent's sync of the withdrawal failed", func() bool {
		return agent.LogCount("failed to sync changes") > failed
	})
	if holds(t, agent.Addr(), inst.ID) {
		t.Fatal("the agent still holds the withdrawn instance")
	}
	if !listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("the servers dropped an instance while refusing writes")
	}
	if err := c.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("Deregister returned with the servers still listing the instance")
	}

	// Close withdraws what is left the same way.
	inst.ID = "leaving-2"
	registerListed(t, ctx, r, server, inst)
	// The first half logged the count this wait once asked for (each
	// failed sync is logged more than once): it waited for nothing, and
	// writes came back before or while the agent synced.
	failed = agent.LogCount("failed to sync changes")
	if err := c.RefuseWrites(ctx, true); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }() // bounded by the 20 s deregister timeout
	eventually(t, 30*time.Second, "the agent's sync of the second withdrawal failed", func() bool {
		return agent.LogCount("failed to sync changes") > failed && !holds(t, agent.Addr(), inst.ID)
	})
	if !listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("the servers dropped an instance while refusing writes")
	}
	if err := c.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("Close returned with the servers still listing the instance")
	}
}

// The agent syncs a withdrawal as two deletions, the service's and then
// its check's, and tries the second when the first failed: servers that
// take writes again between the two (a leader elected in that moment)
// list the service without its check, and so without the mark
// confirmWithdrawn looked for. Deregister and Close took that for
// "dropped" at their first look and returned with the instance listed,
// passing, until the agent's next full sync (CI: the test above, Close's
// half, once in four loaded package runs, its writes allowed again
// while the agent synced). The same listing is made here in order: the
// check is deleted from the catalog, then the servers refuse writes, so
// the agent's sync of the service's deletion fails. Without looking for
// a copy that lost its check, Deregister returns at once and the test
// fails. Real agents: one server, one client agent.
func TestRegistry_DeregisterRemovesWhatAHalfSyncedWithdrawalLeft(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	c, agent, server := syncCluster(t, ctx)
	// A long TTL: the check turning critical would be a change the agent
	// syncs, restoring the check the test deletes.
	r := newRegistry(t, agent.Addr(), WithTTLCheck(time.Minute), WithDeregisterTimeout(20*time.Second))
	inst := registry.Instance{ID: "half-1", Name: "half", Endpoints: []string{"http://127.0.0.1:18099"}}
	registerListed(t, ctx, r, server, inst)
	time.Sleep(4 * time.Second) // the start's full syncs (see above) are past

	// The keep loop is stopped and the servers' listing confirmed here,
	// so that Deregister knows the node and mark of the copy (without
	// them it looks by ID, which never missed this).
	r.mu.Lock()
	reg, _, _ := r.regs.Get(inst.ID)
	r.mu.Unlock()
	reg.stop()
	eventually(t, 30*time.Second, "the registry saw the servers list its copy", func() bool {
		return r.confirmListed(ctx, reg) && reg.node != ""
	})

	sc, err := api.NewClient(&api.Config{Address: server.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	// alone reports whether the servers list the service without its
	// check.
	alone := func() bool {
		entries, _, err := sc.Health().Service(inst.Name, "", false, (&api.QueryOptions{}).WithContext(ctx))
		return err == nil && len(entries) == 1 && entries[0].Service.ID == inst.ID &&
			!slices.ContainsFunc(entries[0].Checks, func(c *api.HealthCheck) bool { return c.ServiceID == inst.ID })
	}
	// Once the servers refuse writes, nothing changes their listing; an
	// agent's full sync just before the refusal would restore the check,
	// so the check is deleted again then (full syncs come a minute or
	// more apart: two tries at most in practice).
	for try := 1; ; try++ {
		dereg := &api.CatalogDeregistration{Node: reg.node, CheckID: reg.checkID}
		if _, err := sc.Catalog().Deregister(dereg, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
			t.Fatal(err)
		}
		if err := c.RefuseWrites(ctx, true); err != nil {
			t.Fatal(err)
		}
		if alone() {
			break
		}
		if try == 5 {
			t.Fatal("the servers do not list the service without its check")
		}
		if err := c.RefuseWrites(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	failed := agent.LogCount("failed to sync changes")
	done := make(chan error, 1)
	go func() { done <- r.Deregister(ctx, inst) }() // bounded by its 20 s timeout
	eventually(t, 30*time.Second, "the agent's sync of the withdrawal failed", func() bool {
		return agent.LogCount("failed to sync changes") > failed && !holds(t, agent.Addr(), inst.ID)
	})
	if !alone() {
		t.Fatal("the servers' listing changed while they refused writes")
	}
	if err := c.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("Deregister returned with the servers still listing the instance")
	}
}

// withdrawnCopy: the withdrawn registration's copy carries its mark in
// its own check, or has no check of its own left (a half-synced
// withdrawal); a copy whose own check carries another mark (another
// registration of the ID) is not it, whatever the node's checks say.
func TestWithdrawnCopy_ItsMarkOrNoCheckOfItsOwn(t *testing.T) {
	const id, mark = "svc-1", "warren registration 00000000000000aa"
	serf := &api.HealthCheck{Node: "n", CheckID: "serfHealth", Notes: "warren registration 00000000000000bb"}
	entry := func(checks ...*api.HealthCheck) *api.ServiceEntry {
		return &api.ServiceEntry{Node: &api.Node{Node: "n"}, Service: &api.AgentService{ID: id}, Checks: checks}
	}
	own := func(notes string) *api.HealthCheck {
		return &api.HealthCheck{Node: "n", CheckID: "service:" + id, ServiceID: id, Notes: notes}
	}
	for _, c := range []struct {
		name string
		e    *api.ServiceEntry
		want bool
	}{
		{"its mark", entry(serf, own("ready; "+mark)), true},
		{"no check of its own left", entry(serf), true},
		{"no check at all", entry(), true},
		{"another registration's mark", entry(serf, own("ready; warren registration 00000000000000a9")), false},
		{"another registration, unmarked", entry(serf, own("ready")), false},
		{"another ID", &api.ServiceEntry{Node: &api.Node{Node: "n"}, Service: &api.AgentService{ID: "svc-2"}}, false},
	} {
		if got := withdrawnCopy(c.e, id, mark); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// A registration the agent lost and the registrar registered again while
// the servers refused writes: the servers list the first call's copy, the
// registrar knows only the second's mark and no node. Close still has the
// servers drop the copy (found on the agent's node by its ID) — it used to
// return at once and leave it listed, passing, until the agent's next full
// sync.
func TestRegistry_CloseAfterAnUnsyncedReRegisterRemovesTheListedCopy(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	c, agent, server := syncCluster(t, ctx)
	r := newRegistry(t, agent.Addr(), WithTTLCheck(1500*time.Millisecond), WithDeregisterTimeout(20*time.Second))
	inst := registry.Instance{ID: "again-1", Name: "again", Endpoints: []string{"http://127.0.0.1:18097"}}
	registerListed(t, ctx, r, server, inst)
	if err := c.RefuseWrites(ctx, true); err != nil {
		t.Fatal(err)
	}
	// The agent loses the instance (as a restarted -dev agent would); the
	// registrar's next beat registers it again, with a new mark, which the
	// servers do not get.
	ac, err := api.NewClient(&api.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.Agent().ServiceDeregister(inst.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the registrar registered the lost instance again", func() bool {
		return holds(t, agent.Addr(), inst.ID) && r.Status().Reregistrations >= 1
	})
	if !listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("the servers dropped the instance while refusing writes")
	}
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }() // bounded by the 20 s deregister timeout
	eventually(t, 30*time.Second, "the agent dropped the instance", func() bool { return !holds(t, agent.Addr(), inst.ID) })
	if err := c.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if listedByServers(t, server.Addr(), inst.Name, inst.ID) {
		t.Fatal("Close returned with the servers still listing the instance")
	}
}
