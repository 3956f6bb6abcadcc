package consul

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/consulcluster"
)

// hostRegisters counts the service-register calls to one agent.
type hostRegisters struct {
	host string
	n    atomic.Int64
	next http.RoundTripper
}

func (c *hostRegisters) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == c.host && strings.HasPrefix(req.URL.Path, "/v1/agent/service/register") {
		c.n.Add(1)
	}
	return c.next.RoundTrip(req)
}

// Tries to move a registration back home that the servers do not confirm
// are spaced out (goHome: after three, doubling from a beat up to 5 min).
// That spacing belongs to one stay away from home: a registration that
// reached home by failing over to it (the agent it had moved to was lost
// too) kept it, so the next time it moved away it waited out the old
// spacing (about a minute here) with home answering, and its first
// unconfirmed try started from the old count. Real agents: one server,
// two client agents (home, other); the servers refuse writes while home
// is tried, so no try is confirmed.
func TestRegistry_SeveralAgents_HomeTriesStartAfreshEachTimeAway(t *testing.T) {
	needAgent(t)
	ctx := ctxT(t, 8*time.Minute)
	c, err := consulcluster.Start(ctx, consulcluster.Config{Servers: 1, Clients: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agents:\n%s", c.Logs(3000))
		}
		c.Close()
	})
	home, other := c.Clients[0], c.Clients[1]
	tries := &hostRegisters{host: home.Addr()}
	// A 1.5 s TTL beats every 0.5 s.
	r := newRegistry(t, home.Addr(), WithAddresses(home.Addr(), other.Addr()), WithTTLCheck(1500*time.Millisecond),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { tries.next = next; return tries }))
	inst := registry.Instance{ID: "homeagain-1", Name: "homeagain", Endpoints: []string{"http://127.0.0.1:18098"}}
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	restart := func(a *consulcluster.Agent) {
		t.Helper()
		if err := c.Start(a); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Away: home lost, then back while the servers refuse writes, until
	// nine tries at home went unconfirmed (the next one spaced a minute).
	c.Kill(home)
	eventually(t, 30*time.Second, "moved to the other agent", func() bool { return holds(t, other.Addr(), inst.ID) })
	if err := c.RefuseWrites(ctx, true); err != nil {
		t.Fatal(err)
	}
	from := tries.n.Load()
	restart(home)
	// Setup, not the claim: nine tries take 15 s to 70 s on a loaded
	// machine (each waits out its probe; the spacing doubles), and a
	// loaded make test once took more than 2 minutes.
	eventually(t, 4*time.Minute, "nine unconfirmed tries at home", func() bool { return tries.n.Load()-from >= 9 })

	// Home by failing over to it: the other agent is lost.
	c.Kill(other)
	// (Home holds copies of the tries already: the count says the move.)
	eventually(t, 30*time.Second, "failed over to home", func() bool { return r.Status().Reregistrations >= 2 })
	if err := c.RefuseWrites(ctx, false); err != nil {
		t.Fatal(err)
	}
	restart(other)
	eventually(t, 30*time.Second, "the copy the other agent restored withdrawn", func() bool { return !holds(t, other.Addr(), inst.ID) })

	// Away again, with home answering and the servers taking writes: it
	// comes home within a few beats.
	c.Kill(home)
	eventually(t, 30*time.Second, "moved to the other agent again", func() bool {
		return holds(t, other.Addr(), inst.ID) && r.Status().Reregistrations >= 3
	})
	restart(home)
	back := time.Now()
	eventually(t, 20*time.Second, "back home and gone from the other agent", func() bool {
		return holds(t, home.Addr(), inst.ID) && !holds(t, other.Addr(), inst.ID)
	})
	t.Logf("home again %s after home was ready", time.Since(back).Round(100*time.Millisecond))
}
