package consul

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
)

// healthQuery is one /v1/health/service request: its dc parameter, and
// whether it is the registrar's look for its own entry (it filters by ID)
// or discovery's.
type healthQuery struct {
	dc       string
	filtered bool
	status   int
}

// healthRecorder records the health queries for one service.
type healthRecorder struct {
	path string
	next http.RoundTripper
	mu   sync.Mutex
	qs   []healthQuery
}

func (h *healthRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := h.next.RoundTrip(req)
	if req.URL.Path == h.path {
		q := healthQuery{dc: req.URL.Query().Get("dc"), filtered: req.URL.Query().Has("filter")}
		if resp != nil {
			q.status = resp.StatusCode
		}
		h.mu.Lock()
		h.qs = append(h.qs, q)
		h.mu.Unlock()
	}
	return resp, err
}

func (h *healthRecorder) snapshot() []healthQuery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.qs)
}

// waitFor polls the recorded queries from the from'th on until one
// satisfies ok, failing the test after d.
func (h *healthRecorder) waitFor(t *testing.T, from int, d time.Duration, what string, ok func(healthQuery) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if qs := h.snapshot(); len(qs) > from && slices.ContainsFunc(qs[from:], ok) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s; queries: %+v", what, d, h.snapshot()[from:])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Registration goes to the agent's own datacenter whatever WithDatacenter
// says, so the registrar's checks that the servers list, and after
// Deregister no longer list, its entry must ask that datacenter: they asked
// WithDatacenter's, where the entry never is — Register's confirmation went
// unanswered (the keep loop beat every 500 ms) and Deregister's could not
// see the entry it should make sure is gone. Discovery still asks
// WithDatacenter's.
//
// A -dev agent has one datacenter, so "dc2" here is not a second
// datacenter: the datacenter check is skipped (dcKnown) so that Register
// goes on with a name the agent would answer "No path to datacenter" for.
// What is tested is which datacenter each query names (the agent's own:
// none), and that the agent answers the registrar's.
func TestRegister_ConfirmationsAskTheAgentsOwnDatacenter(t *testing.T) {
	a := needAgent(t)
	inst := registry.Instance{ID: "dc-confirm-1", Name: "dcconfirm", Endpoints: []string{"http://127.0.0.1:4321"}}
	rec := &healthRecorder{path: "/v1/health/service/" + inst.Name}
	r := newRegistry(t, a.Addr(), WithDatacenter("dc2"),
		WithTransport(func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }))
	r.dcKnown.Store(true) // see above

	if err := r.Register(ctxT(t, time.Minute), inst); err != nil {
		t.Fatal(err)
	}
	ownDC := func() {
		t.Helper()
		for _, q := range rec.snapshot() {
			if q.filtered && q.dc != "" {
				t.Fatalf("the registrar asked datacenter %q about its own entry, not the agent's: %+v", q.dc, q)
			}
		}
	}
	// The keep loop asks at once.
	rec.waitFor(t, 0, 30*time.Second, "confirmation of the registration", func(q healthQuery) bool { return q.filtered })
	ownDC()
	rec.waitFor(t, 0, 30*time.Second, "answered confirmation of the registration", func(q healthQuery) bool {
		return q.filtered && q.status == http.StatusOK
	})
	from := len(rec.snapshot())
	if err := r.Deregister(ctxT(t, time.Minute), inst); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, from, 30*time.Second, "answered confirmation of the withdrawal", func(q healthQuery) bool {
		return q.filtered && q.status == http.StatusOK
	})
	ownDC()
	entries, _, err := r.agents[0].Health().Service(inst.Name, "", false, nil)
	if err != nil || len(entries) != 0 {
		t.Fatalf("the agent's datacenter lists %d entries after Deregister (err %v)", len(entries), err)
	}

	// Discovery goes where WithDatacenter says.
	from = len(rec.snapshot())
	newInstancer(t, r, inst.Name)
	rec.waitFor(t, from, 30*time.Second, "discovery query", func(q healthQuery) bool { return !q.filtered })
	for _, q := range rec.snapshot()[from:] {
		if !q.filtered && q.dc != "dc2" {
			t.Errorf("discovery asked datacenter %q, want WithDatacenter's dc2", q.dc)
		}
	}
	// And so does Client, as before.
	from = len(rec.snapshot())
	_, _, _ = r.Client().Health().Service(inst.Name, "", false, nil)
	if qs := rec.snapshot()[from:]; len(qs) != 1 || qs[0].dc != "dc2" {
		t.Errorf("Client's query: %+v, want one to dc2", qs)
	}
}
