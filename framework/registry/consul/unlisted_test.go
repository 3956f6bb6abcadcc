package consul

import (
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/warren-mesh/warren/framework/registry"
)

// The keep loop stops asking whether the servers list a registration
// after maxUnlisted answers without it (a token that cannot read the
// catalog would get such answers forever). Those answers are about one
// register call's copy: a new call (the agent forgot the instance) makes
// a new copy, which gets its own maxUnlisted. The count carried over from
// the copy before, so a copy registered again while the servers refused
// writes got a few questions, not twenty, and then waited for the next
// heartbeat (20 s here) to be synced, with a log blaming the token. Real
// agents: one server, one client agent; the servers refuse writes
// throughout, so every answer lacks the copy.
func TestRegistry_ANewCopyGetsItsOwnUnlistedAnswers(t *testing.T) {
	ctx := ctxT(t, 3*time.Minute)
	c, agent, _ := syncCluster(t, ctx)
	asks := &pathCounter{prefix: "/v1/health/service/unlisted"}
	r := newRegistry(t, agent.Addr(), WithTTLCheck(time.Minute),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { asks.next = next; return asks }))
	if err := c.RefuseWrites(ctx, true); err != nil {
		t.Fatal(err)
	}
	inst := registry.Instance{ID: "unlisted-1", Name: "unlisted", Endpoints: []string{"http://127.0.0.1:18097"}}
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	// Fifteen answers without it (one per 0.5 s), fewer than maxUnlisted:
	// the loop still asks.
	eventually(t, 60*time.Second, "15 answers without the copy", func() bool { return asks.n.Load() >= 15 })
	// An operator withdraws it from the agent: the next beat finds it
	// lost and registers it again.
	cl, err := api.NewClient(&api.Config{Address: agent.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Agent().ServiceDeregister(inst.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "registered again", func() bool { return r.Status().Reregistrations >= 1 })
	from := asks.n.Load()
	const window = 10 * time.Second
	time.Sleep(window)
	// About twenty in the window for the new copy; with the count
	// carried over, at most five and then none until the next beat.
	n := asks.n.Load() - from
	t.Logf("%d questions about the new copy in %s", n, window)
	if n < 10 {
		t.Errorf("%d questions about the new copy in %s while the servers lacked it: it stopped asking early (maxUnlisted %d)", n, window, maxUnlisted)
	}
}
