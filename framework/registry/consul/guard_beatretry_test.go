package consul

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// beatCounter counts TTL updates (heartbeats) sent to the agent; the
// agent still gets each one.
type beatCounter struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (b *beatCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.Contains(req.URL.Path, "/v1/agent/check/update/") {
		b.n.Add(1)
	}
	return b.next.RoundTrip(req)
}

// While the agent cannot be reached the heartbeat is retried with the
// backoff of WithRetryBackoff capped at the heartbeat interval, TTL/3
// (docs/registry-consul.md, "When the agent restarts or forgets the
// service"), so the instance is back within one heartbeat of the agent's
// return however long it was away. Here the backoff starts at 2 s and may
// grow to a minute, the heartbeat is every second: capped, the 12 s of
// the outage see about a dozen attempts; uncapped (2 s doubling, each
// wait jittered in [step/2, step]) at most 4. Counts, not speed, are
// judged: 6 is far below what the capped loop makes on a loaded machine.
func TestGuard_HeartbeatRetriesWhileTheAgentIsDownAreCappedAtTheBeatInterval(t *testing.T) {
	a := ownAgent(t)
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	beats := &beatCounter{}
	r := newRegistry(t, a.Addr(), WithTTLCheck(3*time.Second), WithRetryBackoff(2*time.Second, time.Minute),
		WithRequestTimeout(time.Second),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { beats.next = next; return beats }))
	inst := registry.Instance{ID: "guard-beat-1", Name: "guard-beat", Endpoints: []string{"http://127.0.0.1:8085"}}
	if err := r.Register(ctxT(t, 20*time.Second), inst); err != nil {
		t.Fatal(err)
	}
	waitState(t, r, registry.StateRegistered, 20*time.Second)

	a.Kill()
	waitState(t, r, registry.StateRetrying, 20*time.Second)
	const window = 12 * time.Second
	before := beats.n.Load()
	time.Sleep(window)
	n := beats.n.Load() - before
	t.Logf("%d heartbeat attempts in %s while the agent was down", n, window)
	if n < 6 {
		t.Fatalf("%d heartbeat attempts in %s while the agent was down; want about one per heartbeat interval (1 s), the backoff capped there", n, window)
	}
}
