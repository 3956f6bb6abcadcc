package consul

import (
	"context"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// holds reports whether the agent at addr has the service id registered.
func holds(t *testing.T, addr, id string) bool {
	t.Helper()
	cl, err := api.NewClient(&api.Config{Address: addr})
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
