package consul

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

// A process that only discovers (warren nginx, xds, watch: no registrar)
// and has one instancer reads the returned agent within about a second,
// not when the instancer's 20–40 s sleep ends: the Registry asks the agent
// for its leader once a second while its queries fail (reports j60b F1,
// r61a N1: callers and the edge read the returned agent 6–9 s late and
// served the closed addresses of instances a rolling restart replaced
// meanwhile).
func TestInstancer_WakesWhenTheAgentIsBack(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, a.Addr(), WithRetryBackoff(40*time.Second, 40*time.Second), WithRequestTimeout(time.Second))
	rec := registrytest.Record(t, newInstancer(t, r, "wake-alone"))
	rec.WaitFor(t, 10*time.Second, "a first event", func(ev sd.Event) bool { return ev.Err == nil })
	a.Kill()
	rec.WaitFor(t, 10*time.Second, "an error event", func(ev sd.Event) bool { return ev.Err != nil })
	from := len(rec.Events())
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := rec.Events()
		for _, ev := range evs[from:] {
			if ev.Err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event without an error within 10s of the agent's return; events since the outage: %d", len(evs)-from)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The heartbeat's retries are capped at its interval (TTL/3) at both ends,
// whatever WithRetryBackoff says: a 40 s minimum used to be the floor of
// every retry, so an instance came back 20–40 s after its agent instead
// of within a heartbeat.
func TestRegistrar_BackWithinAHeartbeatWhateverTheBackoff(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL), WithRetryBackoff(40*time.Second, 40*time.Second), WithRequestTimeout(time.Second))
	inst := testInstance("beat-1", "beat-svc", "http", "127.0.0.1", "8092")
	if err := r.Register(ctxT(t, 30*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	a.Kill()
	eventually(t, 10*time.Second, "a failed heartbeat", func() bool { return r.Status().State == registry.StateRetrying })
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "registered again on the returned agent", func() bool {
		return holds(t, a.Addr(), inst.ID) && r.Status().Reregistrations >= 1
	})
}

// A query the agent answers with a 5xx for another datacenter ("No path to
// datacenter": one it does not know, or whose servers are all down) says
// nothing of the agent, which answers for its own datacenter: the wait for
// the agent must not end the instancer's backoff. It did: the Registry's
// probe asked the agent for its own datacenter's leader, found one at once
// and woke every instancer in backoff about once a second, so this
// instancer asked once a second instead of every 10–20 s (and woke every
// other instancer sleeping out a refusal with it). The probe now asks for
// that datacenter's leader, and ends once no instancer of it runs.
func TestInstancer_AnotherDatacentersFailureKeepsItsBackoff(t *testing.T) {
	a := needAgent(t)
	queries := &pathCounter{prefix: "/v1/health/service/wake-elsewhere"}
	probes := &pathCounter{prefix: "/v1/status/leader"}
	r := newRegistry(t, a.Addr(), WithRetryBackoff(20*time.Second, 20*time.Second), WithRequestTimeout(time.Second),
		WithTransport(func(next http.RoundTripper) http.RoundTripper {
			probes.next = next
			queries.next = probes
			return queries
		}))
	// A Datacenter instancer option: no flag to name, so its failure is
	// not ErrUnknownDatacenter, just the agent's 500.
	in := newInstancer(t, r, "wake-elsewhere", Datacenter("elsewhere"))
	rec := registrytest.Record(t, in)
	rec.WaitFor(t, 10*time.Second, "an error event", func(ev sd.Event) bool { return ev.Err != nil })
	from := queries.n.Load()
	const window = 6 * time.Second
	time.Sleep(window)
	// The backoff is 10–20 s: no query is due within the window. One is
	// allowed for slack; woken once a second it asked about six.
	if n := queries.n.Load() - from; n > 1 {
		t.Errorf("%d queries to the failing datacenter in %s with a 10–20 s backoff: the probe woke it", n, window)
	}
	if probes.n.Load() == 0 {
		t.Errorf("no probe asked whether the datacenter is back")
	}
	// With no instancer of the datacenter left, nothing waits for it:
	// the probe ends (at its next tick) instead of asking forever.
	in.Stop()
	time.Sleep(2 * agentProbeEvery)
	before := probes.n.Load()
	time.Sleep(3 * agentProbeEvery)
	if n := probes.n.Load() - before; n != 0 {
		t.Errorf("%d probes in %s after the datacenter's only instancer stopped, want 0", n, 3*agentProbeEvery)
	}
}

// The wait for another datacenter ends when that datacenter's servers
// name a leader again, not the agent's own: an instancer of dc2 whose
// servers were down reads them within seconds of their return, not when
// its 60–120 s backoff ends. dc1 and dc2 are one server each, joined over
// the WAN; the Registry talks to dc1's, with short blocking queries (a
// query dc1 forwards to dc2 may outlive dc2's server until its wait ends).
func TestInstancer_WakesWhenAnotherDatacenterIsBack(t *testing.T) {
	needAgent(t)
	ctx := ctxT(t, 4*time.Minute)
	dc1, err := consulcluster.Start(ctx, consulcluster.Config{Datacenter: "dc1", Servers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc1.Close)
	dc2, err := consulcluster.Start(ctx, consulcluster.Config{Datacenter: "dc2", Servers: 1, JoinWAN: dc1.WANAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dc2.Close)
	if err := dc1.WaitDatacenters(ctx, "dc1", "dc2"); err != nil {
		t.Fatal(err)
	}
	inst := registry.Instance{ID: "wake-dc2-1", Name: "wake-dc2", Endpoints: []string{"http://127.0.0.1:18093"}}
	if err := newRegistry(t, dc2.Servers[0].Addr(), WithTTLCheck(30*time.Second)).Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, dc1.Servers[0].Addr(), WithRetryBackoff(2*time.Minute, 2*time.Minute), WithRequestTimeout(2*time.Second), WithWaitTime(2*time.Second))
	rec := registrytest.Record(t, newInstancer(t, r, inst.Name, Datacenter("dc2")))
	rec.WaitFor(t, 30*time.Second, "the dc2 instance listed", registrytest.Has(inst.ID))

	dc2.Kill(dc2.Servers[0])
	rec.WaitFor(t, 30*time.Second, "an error event while dc2 is down", func(ev sd.Event) bool { return ev.Err != nil })
	from := len(rec.Events())
	if err := dc2.Start(dc2.Servers[0]); err != nil {
		t.Fatal(err)
	}
	if err := dc2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	const bound = 30 * time.Second // the backoff is 60–120 s
	for {
		evs := rec.Events()
		if slices.ContainsFunc(evs[from:], func(ev sd.Event) bool { return ev.Err == nil }) {
			t.Logf("read dc2 again %s after its server was ready", time.Since(back).Round(time.Millisecond))
			return
		}
		if time.Since(back) > bound {
			t.Fatalf("no event without an error within %s of dc2's return; events since the outage: %d", bound, len(evs)-from)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
