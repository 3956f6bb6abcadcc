package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/httptransport"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/svcerr"
)

// release is a payment instance behind Warren's router: every release has
// GET /hello, GET /charge/{id} (a handler's 404 for any id) and GET /relay
// (another service's route_not_found, passed on); v2 adds POST /refund and
// DELETE /charge/{id}.
type release struct {
	id          string
	inst        registry.Instance
	hits        sync.Map // route pattern → *atomic.Int64
	unroutedHit atomic.Int64
}

func (r *release) count(pattern string) int64 {
	if v, ok := r.hits.Load(pattern); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

func startRelease(t *testing.T, id string, v2 bool) *release {
	t.Helper()
	r := &release{id: id}
	rt := httptransport.NewRouter()
	handle := func(pattern string, h func(w http.ResponseWriter, req *http.Request)) {
		rt.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			req.Context().Value(ranKey{}).(*atomic.Bool).Store(true)
			v, _ := r.hits.LoadOrStore(pattern, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			h(w, req)
		}))
	}
	answer := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echoResp{From: id})
	}
	handle("GET /hello", answer)
	handle("GET /charge/{id}", func(w http.ResponseWriter, req *http.Request) {
		httptransport.WriteError(w, svcerr.New(svcerr.NotFound, "charge_not_found", "no charge "+req.PathValue("id")))
	})
	handle("GET /relay", func(w http.ResponseWriter, _ *http.Request) {
		httptransport.WriteError(w, svcerr.Peer(svcerr.NotFound, codeRouteNotFound, "no route for GET /x", 0))
	})
	if v2 {
		handle("POST /refund", answer)
		handle("DELETE /charge/{id}", answer)
	}
	// An answer no handler ran is the router's own.
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ran := new(atomic.Bool)
		rt.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ranKey{}, ran)))
		if !ran.Load() {
			r.unroutedHit.Add(1)
		}
	})
	srv := httptest.NewServer(httptransport.Handler(h, log.NewNopLogger(), 0))
	t.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	r.inst = registry.Instance{ID: id, Name: "payment", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
	return r
}

type ranKey struct{}

// byID picks the first target by ID that is not avoid and may take
// traffic, so a test knows which instance an attempt goes to.
type byID struct {
	mu sync.Mutex
	ts []*balancer.Target
}

func (b *byID) Update(ts []*balancer.Target) {
	s := slices.Clone(ts)
	slices.SortFunc(s, func(x, y *balancer.Target) int { return strings.Compare(x.Instance().ID, y.Instance().ID) })
	b.mu.Lock()
	b.ts = s
	b.mu.Unlock()
}

func (b *byID) Pick(_ context.Context, avoid *balancer.Target) (*balancer.Target, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.ts {
		if t != avoid && t.Allow() {
			return t, nil
		}
	}
	if len(b.ts) == 0 {
		return nil, balancer.ErrNoEndpoints
	}
	return b.ts[0], nil
}

// A rolling deploy's mixed fleet over HTTP: "a-old" (the previous
// release) has no POST /refund nor DELETE /charge/{id}, "b-new" has both,
// and the balancer tries a-old first. Its router's 404 route_not_found
// and 405 method_not_allowed ran no handler: the call — a POST, not
// idempotent — is retried on b-new and succeeds, every time (report j50b
// 2: 132 of 450 failed). a-old is not held guilty: with ejection after 2
// failures it stays in, and serves GET /hello after. A handler's 404 (a
// charge not found) and another service's route_not_found passed on stay
// answers: one attempt each.
func TestCall_UnroutedOnAnOldInstanceIsRetriedElsewhereAndNotHeldAgainstIt(t *testing.T) {
	old, newer := startRelease(t, "a-old", false), startRelease(t, "b-new", true)
	c := must(NewFromInstancer(sd.FixedInstancer{old.inst.String(), newer.inst.String()}, "payment",
		WithBalancer(&byID{}), WithOutlier(outlier.WithConsecutiveFailures(2)),
		// Every call here needs its retry, more than the default budget's
		// 20%: such retries spend no token (retry.Freer), so the default
		// budget stands. No hedging: on a loaded machine a GET's hedge
		// reached b-new beside a-old's answer, which the last checks
		// took for a retry (a failure in a loaded run).
		WithRetry(retry.WithBackoff(time.Millisecond, time.Millisecond), retry.WithoutHedging())))
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for i := range 10 {
		for _, method := range []string{"POST /refund", "DELETE /charge/7"} {
			verb, path, _ := strings.Cut(method, " ")
			got, err := Call[echoReq, echoResp](ctx, c, verb, path, echoReq{N: i})
			if err != nil || got.From != "b-new" {
				t.Fatalf("%s #%d = %+v, %v; want b-new's answer after a-old's", method, i, got, err)
			}
		}
	}
	if o, n := old.unroutedHit.Load(), newer.count("POST /refund")+newer.count("DELETE /charge/{id}"); o != 20 || n != 20 {
		t.Fatalf("a-old answered %d unrouted, b-new served %d; want 20 and 20 (each call tried a-old first)", o, n)
	}
	if st := c.State(); st.Ejected != 0 {
		t.Fatalf("state %+v: want a-old never ejected", st)
	}
	// Nor were its quick refusals latency samples, which would make it
	// look fast to P2C.
	for _, tg := range c.Targets() {
		if tg.Instance().ID == "a-old" && tg.Latency() != 0 {
			t.Fatalf("a-old's latency %s after answering only unrouted: its refusals were taken as samples", tg.Latency())
		}
	}
	for i := range 5 {
		if got, err := Call[echoReq, echoResp](ctx, c, "GET", "/hello", echoReq{}); err != nil || got.From != "a-old" {
			t.Fatalf("GET /hello #%d = %+v, %v; want a-old, still in rotation", i, got, err)
		}
	}

	for _, tc := range []struct{ path, code string }{
		{"/charge/7", "charge_not_found"}, // the handler's 404
		{"/relay", codeRouteNotFound},     // another service's, passed on
	} {
		before := newer.count("GET " + strings.Replace(tc.path, "/7", "/{id}", 1))
		_, err := Call[echoReq, echoResp](ctx, c, "GET", tc.path, echoReq{}, Idempotent())
		var ce *Error
		if !errors.As(err, &ce) || ce.Status != http.StatusNotFound || ce.Code != tc.code || ce.Unrouted() {
			t.Fatalf("GET %s: err = %v; want a-old's 404 %s", tc.path, err, tc.code)
		}
		if after := newer.count("GET " + strings.Replace(tc.path, "/7", "/{id}", 1)); after != before {
			t.Fatalf("GET %s was retried on b-new: a handler's answer", tc.path)
		}
	}
}

// Which answers are a router's "no such route": not a failure, not a
// latency sample (balancer.Refused), retried for any request.
func TestError_Unrouted(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want bool
	}{
		{&Error{Status: 404, Code: codeRouteNotFound}, true},
		{&Error{Status: 405, Code: codeMethodNotAllowed}, true},
		{&Error{Status: 404, Code: "charge_not_found"}, false},
		{&Error{Status: 404}, false},
		{&Error{Status: 404, Code: codeRouteNotFound, PassedOn: true}, false},
		{&Error{Status: 400, Code: codeRouteNotFound}, false},
	} {
		class := retry.Fatal
		if tc.want {
			class = retry.Unprocessed
		}
		if tc.err.Unrouted() != tc.want || tc.err.Refused() != tc.want || tc.err.RetryClass() != class || instanceFailure(tc.err) {
			t.Errorf("%+v: Unrouted %v, Refused %v, RetryClass %s, instanceFailure %v; want %v, %v, %s, false",
				tc.err, tc.err.Unrouted(), tc.err.Refused(), tc.err.RetryClass(), instanceFailure(tc.err), tc.want, tc.want, class)
		}
	}
}
