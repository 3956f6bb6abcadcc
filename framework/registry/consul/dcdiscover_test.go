package consul

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// A process that only discovers (a client, `warren ls --registry=consul`)
// with a mistyped --consul-datacenter learned of it only as "500 No path to
// datacenter" from every query. Its first failed query now runs Register's
// check: the instancer's first event, and Services, carry
// ErrUnknownDatacenter naming the flag and the datacenters the agent knows.
// A right name costs no request: only failed queries ask.
func TestDiscover_UnknownDatacenterIsNamedOnTheFirstEvent(t *testing.T) {
	a := needAgent(t)
	for _, tc := range []struct {
		name, flag string
		opt        Option
		inOpts     []InstancerOption
	}{
		{"datacenter", "--consul-datacenter", WithDatacenter("nosuchdc"), nil},
		{"failover", "--consul-failover-datacenters", WithFailover("nosuchdc"), []InstancerOption{Datacenter("nosuchdc")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistry(t, a.Addr(), tc.opt)
			rec := registrytest.Record(t, newInstancer(t, r, "dcdiscover", tc.inOpts...))
			ev, _ := rec.WaitFor(t, 30*time.Second, "the first event", func(sd.Event) bool { return true })
			if !errors.Is(ev.Err, ErrUnknownDatacenter) {
				t.Fatalf("first event error = %v, want ErrUnknownDatacenter", ev.Err)
			}
			for _, want := range []string{`"nosuchdc"`, tc.flag, "knows dc1;"} {
				if !strings.Contains(ev.Err.Error(), want) {
					t.Errorf("the error does not say %s: %v", want, ev.Err)
				}
			}
			t.Logf("first event: %v", ev.Err)
		})
	}

	r := newRegistry(t, a.Addr(), WithDatacenter("nosuchdc"))
	_, err := r.Services(ctxT(t, 30*time.Second))
	if !errors.Is(err, ErrUnknownDatacenter) || !strings.Contains(err.Error(), "--consul-datacenter") {
		t.Fatalf("Services = %v, want ErrUnknownDatacenter naming --consul-datacenter", err)
	}

	// The agent's own datacenter, named: the datacenters are never listed.
	counter := &pathCounter{prefix: "/v1/catalog/datacenters"}
	ok := newRegistry(t, a.Addr(), WithDatacenter("dc1"),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { counter.next = next; return counter }))
	rec := registrytest.Record(t, newInstancer(t, ok, "dcdiscover"))
	if ev, _ := rec.WaitFor(t, 30*time.Second, "the first event", func(sd.Event) bool { return true }); ev.Err != nil {
		t.Fatalf("discovery in dc1: %v", ev.Err)
	}
	if _, err := ok.Services(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("Services in dc1: %v", err)
	}
	if n := counter.n.Load(); n != 0 {
		t.Errorf("discovery in a known datacenter listed the datacenters %d times, want 0", n)
	}
}

// An agent that is down is no refusal: the instancer's events carry the
// connection error (not ErrUnknownDatacenter) and it keeps trying; once
// the agent answers, the unknown datacenter is named.
func TestDiscover_DatacenterIsCheckedOnceTheAgentAnswers(t *testing.T) {
	a := ownAgent(t)
	r := newRegistry(t, a.Addr(), WithDatacenter("nosuchdc"), WithRetryBackoff(50*time.Millisecond, 200*time.Millisecond))
	rec := registrytest.Record(t, newInstancer(t, r, "dcdiscoverwait"))
	ev, _ := rec.WaitFor(t, 30*time.Second, "an error event while the agent is down", func(ev sd.Event) bool { return ev.Err != nil })
	if errors.Is(ev.Err, ErrUnknownDatacenter) {
		t.Fatalf("an agent that is down reported as an unknown datacenter: %v", ev.Err)
	}
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 30*time.Second, "ErrUnknownDatacenter once the agent answers", func(ev sd.Event) bool {
		return errors.Is(ev.Err, ErrUnknownDatacenter)
	})
}
