package consul

import (
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
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
