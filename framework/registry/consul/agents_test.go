package consul

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

// holds reports whether the agent at addr has the service id registered.
func holds(t *testing.T, addr, id string) bool {
	t.Helper()
	return holdsAs(t, addr, "", id)
}

// holdsAs is holds asking with an ACL token.
func holdsAs(t *testing.T, addr, token, id string) bool {
	t.Helper()
	cl, err := api.NewClient(&api.Config{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	svcs, err := cl.Agent().ServicesWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctx))
	return err == nil && svcs[id] != nil
}

func eventually(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", d, what)
		}
	}
}

// With several agents (WithAddresses) a registration lives on the first
// (home); when home cannot be reached it moves to the next within a few
// heartbeats, and when home answers again it moves back and the copy it
// left is withdrawn. Two -dev agents stand for two nodes' agents. Bounds
// are generous (a loaded machine); the order of states is what is judged.
func TestRegistry_SeveralAgents_RegistrationFailsOverAndComesHome(t *testing.T) {
	home, other := ownAgent(t), ownAgent(t)
	for _, a := range []interface{ Start(context.Context) error }{home, other} {
		if err := a.Start(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	r := newRegistry(t, home.Addr(), WithAddresses(home.Addr(), other.Addr()), WithTTLCheck(3*time.Second))
	inst := registry.Instance{ID: "svc-1", Name: "svc", Endpoints: []string{"http://127.0.0.1:18080"}}
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if !holds(t, home.Addr(), inst.ID) || holds(t, other.Addr(), inst.ID) {
		t.Fatal("registered somewhere else than the home agent")
	}

	home.Kill()
	// The count is updated just after the write lands: wait for both.
	eventually(t, 30*time.Second, "registration moved to the other agent, counted in Reregistrations", func() bool {
		return holds(t, other.Addr(), inst.ID) && r.Status().Reregistrations >= 1
	})

	if err := home.Start(ctxT(t, time.Minute)); err != nil { // a fresh agent: it knows nothing
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "registration back home and gone from the other agent", func() bool {
		return holds(t, home.Addr(), inst.ID) && !holds(t, other.Addr(), inst.ID)
	})
	if err := r.Deregister(ctxT(t, 10*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	if holds(t, home.Addr(), inst.ID) {
		t.Fatal("still registered at home after Deregister")
	}
}

// An instancer asks the next agent at once when its agent fails, and
// publishes no error while another agent answers.
func TestInstancer_SeveralAgents_AsksTheNextAgent(t *testing.T) {
	first, second := ownAgent(t), ownAgent(t)
	for _, a := range []interface{ Start(context.Context) error }{first, second} {
		if err := a.Start(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// The same instance on both (two -dev agents are two catalogs).
	inst := registry.Instance{ID: "svc-1", Name: "svc", Endpoints: []string{"http://127.0.0.1:18081"}}
	for _, addr := range []string{first.Addr(), second.Addr()} {
		if err := newRegistry(t, addr).Register(ctxT(t, 20*time.Second), inst); err != nil {
			t.Fatal(err)
		}
	}
	d := newRegistry(t, first.Addr(), WithAddresses(first.Addr(), second.Addr()))
	in := newInstancer(t, d, "svc")
	ch := make(chan sd.Event)
	done, stopped := make(chan struct{}), make(chan struct{})
	var errs []error // read after stopped
	got := make(chan int, 256)
	go func() { // reads ch until done, as sd.Instancer requires
		defer close(stopped)
		for {
			select {
			case ev := <-ch:
				if ev.Err != nil {
					errs = append(errs, ev.Err)
				}
				select {
				case got <- len(ev.Instances):
				default:
				}
			case <-done:
				return
			}
		}
	}()
	in.Register(ch)
	stop := func() {
		in.Deregister(ch)
		close(done)
		<-stopped
	}
	waitCount := func(want int, what string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case n := <-got:
				if n == want {
					return
				}
			case <-deadline:
				stop()
				t.Fatalf("no event with %d instances: %s", want, what)
			}
		}
	}
	waitCount(1, "through the first agent")
	first.Kill() // the blocking query in flight fails; the next goes to the second agent
	// A fresh change on the second agent proves the instancer reads it.
	inst2 := inst
	inst2.ID, inst2.Endpoints = "svc-2", []string{"http://127.0.0.1:18082"}
	if err := newRegistry(t, second.Addr()).Register(ctxT(t, 20*time.Second), inst2); err != nil {
		stop()
		t.Fatal(err)
	}
	waitCount(2, "the second agent's new instance")
	stop()
	if len(errs) != 0 {
		t.Errorf("published errors while another agent answered: %v", errs)
	}
}

// checkOnAgent returns the agent's own copy of check id.
func checkOnAgent(t *testing.T, addr, id string) *api.AgentCheck {
	t.Helper()
	cl, err := api.NewClient(&api.Config{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	checks, err := cl.Agent().ChecksWithFilterOpts("", (&api.QueryOptions{}).WithContext(ctxT(t, 5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if checks[id] == nil {
		t.Fatalf("agent has no check %s", id)
	}
	return checks[id]
}

// An agent that already holds a check of the ID keeps that check's status
// when the service is registered again: the critical copy a restarted
// agent restored from disk, or a crashed run's. A ready instance is
// nonetheless passing right after Register, not a heartbeat interval (20
// minutes here) later.
func TestRegister_OverACriticalCopyIsPassingAtOnce(t *testing.T) {
	a := needAgent(t)
	inst := registry.Instance{ID: "crit-1", Name: "crit", Endpoints: []string{"http://127.0.0.1:18090"}}
	cl, err := api.NewClient(&api.Config{Address: a.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	// What a crashed run of this instance leaves: its record, critical.
	err = cl.Agent().ServiceRegisterOpts(&api.AgentServiceRegistration{ID: inst.ID, Name: inst.Name, Address: "127.0.0.1", Port: 18090,
		Checks: api.AgentServiceChecks{{CheckID: "service:" + inst.ID, TTL: "1h", Status: api.HealthCritical}}},
		api.ServiceRegisterOpts{}.WithContext(ctxT(t, 5*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Agent().ServiceDeregister(inst.ID) })

	r := newRegistry(t, a.Addr(), WithTTLCheck(time.Hour)) // no interval heartbeat within the test: only the first
	if err := r.Register(ctxT(t, 10*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "check passing after Register", func() bool {
		return checkOnAgent(t, a.Addr(), "service:"+inst.ID).Status == api.HealthPassing
	})
}

// Every register call marks its copy afresh (the check's notes), so the
// catalog tells the copy just registered from an older one: a call of a
// Registry after another's, or a later call of the same, never carries
// an earlier mark.
func TestRegister_EachCallMarksItsCopyAfresh(t *testing.T) {
	a := needAgent(t)
	inst := registry.Instance{ID: "mark-1", Name: "mark", Endpoints: []string{"http://127.0.0.1:18091"}}
	seen := map[string]bool{}
	for range 3 {
		r := newRegistry(t, a.Addr(), WithTTLCheck(time.Hour))
		if err := r.Register(ctxT(t, 10*time.Second), inst); err != nil {
			t.Fatal(err)
		}
		notes := checkOnAgent(t, a.Addr(), "service:"+inst.ID).Notes
		if !strings.HasPrefix(notes, "ready; warren registration ") || seen[notes] {
			t.Fatalf("notes %q (seen before: %v), want %q and a fresh mark", notes, seen[notes], "ready; warren registration …")
		}
		seen[notes] = true
		r.Close()
	}
}

// The servers' copy counts as the one a register call made only if it
// carries that call's mark in one of its own checks: the mark alone says
// which copy it is (no other call made it), and the entry says its node,
// so no call needs GET /v1/agent/self (agent:read).
func TestMarkedEntry_OnlyTheCopyOfThisCall(t *testing.T) {
	const id, mark = "svc-1", "warren registration 00000000000000aa"
	entry := func(node, notes string) *api.ServiceEntry {
		return &api.ServiceEntry{Node: &api.Node{Node: node}, Service: &api.AgentService{ID: id},
			Checks: api.HealthChecks{
				{Node: node, CheckID: "serfHealth", Notes: mark}, // not the service's check
				{Node: node, CheckID: "service:" + id, ServiceID: id, Notes: notes},
			}}
	}
	for _, c := range []struct {
		name     string
		entries  []*api.ServiceEntry
		wantNode string // "": none
	}{
		{"this call's copy at home", []*api.ServiceEntry{entry("home", "ready; "+mark)}, "home"},
		{"beside the away copy", []*api.ServiceEntry{entry("away", "ready; warren registration 1"), entry("home", "ready; "+mark)}, "home"},
		{"an older copy at home (synced before the agent went down)", []*api.ServiceEntry{entry("home", "ready; warren registration 00000000000000a9")}, ""},
		{"an unmarked copy at home", []*api.ServiceEntry{entry("home", "ready")}, ""},
		{"the mark only in a node check", []*api.ServiceEntry{{Node: &api.Node{Node: "home"}, Service: &api.AgentService{ID: id},
			Checks: api.HealthChecks{{Node: "home", CheckID: "serfHealth", Notes: mark}}}}, ""},
		{"nothing", nil, ""},
	} {
		got := ""
		if e := markedEntry(c.entries, id, mark); e != nil {
			got = e.Node.Node
		}
		if got != c.wantNode {
			t.Errorf("%s: node %q, want %q", c.name, got, c.wantNode)
		}
	}
}

// A home agent that restarts with its data directory restores the copy it
// held, its TTL check critical (the TTL ran out while it was down), and
// its node is passing again at once: the servers list the copy synced
// before the crash as passing until the agent's first sync. The
// registration still comes home, and only to a passing copy of its own
// (the agent keeps the restored check's status over a new registration's,
// so the first copy made on the way home may stay critical: the keep loop
// withdraws it with the other stale copies and registers afresh). Real
// agents: one server and two client agents with data directories.
func TestRegistry_SeveralAgents_ComesHomeToAnAgentThatRestoredItsCopy(t *testing.T) {
	needAgent(t)
	ctx := ctxT(t, 3*time.Minute)
	c, err := consulcluster.Start(ctx, consulcluster.Config{Servers: 1, Clients: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	home, other := c.Clients[0], c.Clients[1]
	const ttl = 2 * time.Second
	r := newRegistry(t, home.Addr(), WithAddresses(home.Addr(), other.Addr()), WithTTLCheck(ttl))
	inst := registry.Instance{ID: "restored-1", Name: "restored", Endpoints: []string{"http://127.0.0.1:18092"}}
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "home copy passing", func() bool {
		return checkOnAgent(t, home.Addr(), "service:"+inst.ID).Status == api.HealthPassing
	})
	c.Kill(home)
	eventually(t, 30*time.Second, "registration moved to the other agent", func() bool {
		return holds(t, other.Addr(), inst.ID)
	})
	time.Sleep(2 * ttl) // what home restores is past its TTL: critical
	if err := c.Start(home); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "registration back home and gone from the other agent", func() bool {
		return holds(t, home.Addr(), inst.ID) && !holds(t, other.Addr(), inst.ID)
	})
	if got := checkOnAgent(t, home.Addr(), "service:"+inst.ID).Status; got != api.HealthPassing {
		t.Fatalf("home copy %s after the move, want passing", got)
	}
}
