package consul

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// pathCounter counts the requests whose path starts with prefix.
type pathCounter struct {
	prefix string
	n      atomic.Int64
	next   http.RoundTripper
}

func (c *pathCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasPrefix(req.URL.Path, c.prefix) {
		c.n.Add(1)
	}
	return c.next.RoundTrip(req)
}

// The confirmation after Register (do the servers list the copy the agent
// took?) was asked again every 500 ms for as long as the agent answered it
// with an error, forever, and silently. The agent here answers every
// health query "403 Endpoint is blocked by agent configuration" while it
// takes the registration and its heartbeats: the questions now back off
// (0.5 s doubling to 5 s, jittered: at most 6 in 9 s, against about 18 at
// the fixed beat) and the failure is logged once, not per question.
func TestRegistry_ConfirmationThatKeepsFailingBacksOff(t *testing.T) {
	a := ownAgent(t, consultest.WithExtraConfig(`http_config { block_endpoints = ["/v1/health/service"] }`))
	if err := a.Start(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	counter := &pathCounter{prefix: "/v1/health/service/"}
	// A 30 s TTL beats every 10 s: within the window every question is
	// the confirmation's, at its own pace.
	r := newRegistry(t, a.Addr(), WithTTLCheck(30*time.Second),
		WithLogger(log.NewLogfmtLogger(log.NewSyncWriter(logs))),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { counter.next = next; return counter }))
	inst := registry.Instance{ID: "confirm-bo-1", Name: "confirmbo", Endpoints: []string{"http://127.0.0.1:4321"}}
	if err := r.Register(ctxT(t, time.Minute), inst); err != nil {
		t.Fatal(err)
	}
	const window = 9 * time.Second
	time.Sleep(window)
	n := counter.n.Load()
	t.Logf("%d confirmation questions in %s", n, window)
	// With backoff at most 6 fit in the window, whatever the load; the
	// fixed beat asked about 18. The floor says it did not stop asking.
	if n > 8 {
		t.Errorf("%d confirmation questions in %s against an agent refusing them: want at most 8 (backoff)", n, window)
	}
	if n < 2 {
		t.Errorf("%d confirmation questions in %s: want it to keep asking", n, window)
	}
	if said := strings.Count(logs.String(), "cannot ask the servers whether they list the registration"); said != 1 {
		t.Errorf("the failing confirmation was logged %d times, want once:\n%s", said, logs)
	}
}
