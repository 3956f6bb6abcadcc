package consul

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// A mistyped WithDatacenter (--consul-datacenter) registered anyway, in
// the agent's own datacenter, and the process reported ready while every
// discovery query failed "500 No path to datacenter" (report j53d
// finding 3). Register now refuses it at once, naming the datacenter and
// the ones the agent knows, and registers nothing; the agent's own
// datacenter registers as before.
func TestRegister_UnknownDatacenterIsRefusedAtOnce(t *testing.T) {
	a := needAgent(t)
	inst := registry.Instance{ID: "dc-typo-1", Name: "dctypo", Endpoints: []string{"http://127.0.0.1:4321"}}

	r := newRegistry(t, a.Addr(), WithDatacenter("nosuchdc"))
	ctx := ctxT(t, time.Minute) // bounds a failing test only
	err := r.Register(ctx, inst)
	switch {
	case err == nil:
		t.Fatal("registered with an unknown datacenter")
	case ctx.Err() != nil:
		t.Fatalf("Register retried until its deadline: %v", err)
	case !errors.Is(err, ErrUnknownDatacenter):
		t.Fatalf("Register = %v, want ErrUnknownDatacenter", err)
	}
	for _, want := range []string{`"nosuchdc"`, "--consul-datacenter", "knows dc1;"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %s: %v", want, err)
		}
	}
	t.Logf("refused: %v", err)
	svcs, err := r.Client().Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs[inst.ID]; ok {
		t.Fatal("the refused instance is registered at the agent")
	}

	ok := newRegistry(t, a.Addr(), WithDatacenter("dc1"))
	if err := ok.Register(ctxT(t, time.Minute), inst); err != nil {
		t.Fatalf("register in the agent's own datacenter, named: %v", err)
	}
}

// A mistyped WithFailover datacenter (--consul-failover-datacenters)
// registered and reported ready while failing over could only answer "500
// No path to datacenter" (re-test r54b G3). Register refuses it as it
// refuses an unknown WithDatacenter, naming it, the flag and the
// datacenters the agent knows; a known one (the agent's own, dc1 on a -dev
// agent) registers.
func TestRegister_UnknownFailoverDatacenterIsRefusedAtOnce(t *testing.T) {
	a := needAgent(t)
	inst := registry.Instance{ID: "dc-failover-typo-1", Name: "dcfailovertypo", Endpoints: []string{"http://127.0.0.1:4321"}}

	r := newRegistry(t, a.Addr(), WithFailover("dc1", "nosuchdc"))
	ctx := ctxT(t, time.Minute) // bounds a failing test only
	err := r.Register(ctx, inst)
	switch {
	case err == nil:
		t.Fatal("registered with an unknown failover datacenter")
	case ctx.Err() != nil:
		t.Fatalf("Register retried until its deadline: %v", err)
	case !errors.Is(err, ErrUnknownDatacenter):
		t.Fatalf("Register = %v, want ErrUnknownDatacenter", err)
	}
	for _, want := range []string{`"nosuchdc"`, "--consul-failover-datacenters", "knows dc1;"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"dc1"`) {
		t.Errorf("the error names the known failover datacenter dc1 as unknown: %v", err)
	}
	t.Logf("refused: %v", err)
	svcs, err := r.Client().Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := svcs[inst.ID]; ok {
		t.Fatal("the refused instance is registered at the agent")
	}

	ok := newRegistry(t, a.Addr(), WithFailover("dc1"))
	if err := ok.Register(ctxT(t, time.Minute), inst); err != nil {
		t.Fatalf("register with a known failover datacenter: %v", err)
	}
}

// The check does not change what Register does while the agent cannot be
// reached: it waits, retrying, and the datacenters are checked once the
// agent answers.
func TestRegister_DatacenterIsCheckedOnceTheAgentAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opt     Option
		refused bool
	}{
		{"dc1", WithDatacenter("dc1"), false},
		{"nosuchdc", WithDatacenter("nosuchdc"), true},
		{"failover-nosuchdc", WithFailover("nosuchdc"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := ownAgent(t)
			r := newRegistry(t, a.Addr(), tc.opt, WithRetryBackoff(50*time.Millisecond, 200*time.Millisecond))
			done := make(chan error, 1)
			go func() {
				done <- r.Register(context.Background(), registry.Instance{ID: "dc-wait-1", Name: "dcwait", Endpoints: []string{"http://127.0.0.1:4321"}})
			}()
			select {
			case err := <-done:
				t.Fatalf("Register returned while the agent was down: %v", err)
			case <-time.After(time.Second):
			}
			if err := a.Start(ctxT(t, time.Minute)); err != nil {
				t.Fatal(err)
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("Register did not return within 30s of the agent starting")
			}
			if tc.refused != errors.Is(err, ErrUnknownDatacenter) || (!tc.refused && err != nil) {
				t.Fatalf("Register = %v, want refused %v", err, tc.refused)
			}
		})
	}
}
