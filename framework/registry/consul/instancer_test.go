package consul

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// TestInstancer_BackToBackChangesAreNotRateLimited registers and withdraws
// instances one right after another while the instancer may make only one
// query every 10s. Each change must reach the subscriber far sooner: the
// query that follows an answer with a new index is not rate-limited.
func TestInstancer_BackToBackChangesAreNotRateLimited(t *testing.T) {
	a := needAgent(t)
	const tokenInterval = 10 * time.Second
	// The bound is a quarter of the token interval: a change that had to
	// wait for a token would miss it by seconds, while a loaded machine
	// still delivers an unlimited one within it.
	const bound = tokenInterval / 4
	r := newRegistry(t, a.Addr(), WithTTLCheck(testTTL), WithQueryRate(float64(time.Second)/float64(tokenInterval), 1))
	rec := registrytest.Record(t, newInstancer(t, r, "burst-svc"))
	rec.WaitFor(t, 5*time.Second, "the first, empty set", func(ev sd.Event) bool { return ev.Err == nil && len(ev.Instances) == 0 })

	const n = 4 // instances; 2n changes back to back
	insts := make([]registry.Instance, n)
	for i := range insts {
		insts[i] = registry.Instance{ID: "burst-" + strconv.Itoa(i), Name: "burst-svc", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 9100+i)}}
	}
	change := func(what string, do func() error, ok func(sd.Event) bool) {
		t.Helper()
		start := time.Now()
		if err := do(); err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, bound, what, ok)
		if took := time.Since(start); took > bound {
			t.Fatalf("%s took %s; want < %s (token interval %s)", what, took, bound, tokenInterval)
		} else {
			t.Logf("%s: %s", what, took.Round(100*time.Microsecond))
		}
	}
	for _, inst := range insts {
		change("register "+inst.ID, func() error { return r.Register(ctxT(t, 5*time.Second), inst) }, registrytest.Has(inst.ID))
	}
	for _, inst := range insts {
		change("deregister "+inst.ID, func() error { return r.Deregister(ctxT(t, 5*time.Second), inst) }, registrytest.Lacks(inst.ID))
	}
}

// TestInstancer_WakeUpsWithoutChangeAreRateLimited puts a proxy in front of
// the agent that turns every blocking query into an instant answer (it
// drops the index parameter) and plays a misbehaving index, then counts the
// queries: at most the burst plus the configured rate, whatever the index
// does.
func TestInstancer_WakeUpsWithoutChangeAreRateLimited(t *testing.T) {
	a := needAgent(t)
	const (
		perSecond = 5.0
		burst     = 2
		window    = 2 * time.Second
	)
	cases := []struct {
		name  string
		index func(n int64) string // X-Consul-Index of the nth answer; "" for an error
	}{
		{"unchanged index", func(int64) string { return "42" }},
		{"index 0", func(int64) string { return "0" }},
		{"index going backwards", func(n int64) string { return strconv.FormatInt(1_000_000-n, 10) }},
		{"errors", func(int64) string { return "" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proxy := newInstantProxy(t, a.Addr(), c.index)
			r := newRegistry(t, proxy.addr, WithTTLCheck(testTTL), WithQueryRate(perSecond, burst),
				WithRetryBackoff(time.Millisecond, time.Millisecond))
			start := time.Now()
			newInstancer(t, r, "instant-svc")
			time.Sleep(window)
			got := proxy.queries.Load()
			elapsed := time.Since(start)
			// The first answer is a change (unknown → known) and buys one
			// query without a token.
			limit := int64(burst+perSecond*elapsed.Seconds()) + 1
			t.Logf("%d queries in %s (limit %d)", got, elapsed.Round(time.Millisecond), limit)
			if got > limit {
				t.Fatalf("%d queries in %s; the rate limit allows %d", got, elapsed, limit)
			}
			if got < 3 {
				t.Fatalf("only %d queries in %s: the instancer stopped asking", got, elapsed)
			}
		})
	}
}

// instantProxy is a reverse proxy on loopback in front of a real agent. It
// counts health queries, strips their index (so the agent answers at once)
// and replaces the X-Consul-Index of the answer, or answers 500.
type instantProxy struct {
	addr    string
	queries atomic.Int64
}

func newInstantProxy(t *testing.T, agentAddr string, index func(n int64) string) *instantProxy {
	t.Helper()
	p := &instantProxy{}
	target := &url.URL{Scheme: "http", Host: agentAddr}
	rp := &httputil.ReverseProxy{
		ErrorLog: log.New(io.Discard, "", 0), // cancelled queries at cleanup
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			q := pr.Out.URL.Query()
			q.Del("index")
			pr.Out.URL.RawQuery = q.Encode()
		},
		ModifyResponse: func(resp *http.Response) error {
			if !strings.HasPrefix(resp.Request.URL.Path, "/v1/health/service/") {
				return nil
			}
			resp.Header.Set("X-Consul-Index", resp.Request.Header.Get("X-Test-Index"))
			return nil
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, "/v1/health/service/") {
			n := p.queries.Add(1)
			idx := index(n)
			if idx == "" {
				http.Error(w, fmt.Sprintf("proxy: failing query %d", n), http.StatusInternalServerError)
				return
			}
			req.Header.Set("X-Test-Index", idx)
		}
		rp.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	p.addr = srv.Listener.Addr().String()
	return p
}
