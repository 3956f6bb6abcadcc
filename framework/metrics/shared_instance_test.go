package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/balancer"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/outlier"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// userInstance is one instance of service user serving HTTP (GET /ping;
// 500 if its ID is the query's fail) and gRPC (grpctest.Echo) on
// loopback.
type userInstance struct{ rec registry.Instance }

func startUser(t *testing.T, id string) *userInstance {
	t.Helper()
	u := &userInstance{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") == id {
			http.Error(w, "failing", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(hs.Close)
	gs, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, id) }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := gs.Listen(transport.Host{Service: "user", Nonce: id, Live: health.NewSet(time.Second), Ready: health.NewSet(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve() //nolint:errcheck // ends with Close
	t.Cleanup(func() { gs.Close() })
	u.rec = registry.Instance{ID: id, Name: "user", Endpoints: []string{hs.URL, gs.Scheme() + "://" + addr.String()}}
	return u
}

// releases is the process's one metrics.Client (as bootstrap gives every
// client) that also tells the test of each release it hears; it is still
// a client.InstanceObserver (the embedded Client's methods).
type releases struct {
	*metrics.Client
	ch chan string
}

func (r *releases) InstanceReleased(service, instance string) {
	r.Client.InstanceReleased(service, instance)
	select {
	case r.ch <- instance:
	default:
	}
}

// waitRelease waits at most 10 s for a client's release of instance.
func (r *releases) waitRelease(t *testing.T, instance string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-r.ch:
			if got == instance {
				return
			}
		case <-timeout:
			t.Fatalf("no release of %s within 10s", instance)
		}
	}
}

// userClient is a client of user over one transport, with its own
// registry (so one client can drop an instance the other keeps). While
// failing, its calls fail on user-1 (HTTP 500, gRPC INTERNAL) and succeed
// on the others.
type userClient struct {
	name    string
	reg     *memory.Registry
	failing atomic.Bool
	targets func() []*balancer.Target
	call    func(ctx context.Context) error
	close   func() error
}

func newUserClient(t *testing.T, ctx context.Context, transportName string, obs client.Observer, us []*userInstance, copts ...client.Option) *userClient {
	t.Helper()
	reg := memory.New()
	t.Cleanup(func() { reg.Close() })
	for _, u := range us {
		if err := reg.Register(ctx, u.rec); err != nil {
			t.Fatal(err)
		}
	}
	copts = append([]client.Option{client.WithObserver(obs)}, copts...)
	uc := &userClient{name: transportName, reg: reg}
	switch transportName {
	case "http":
		c, err := client.New(ctx, reg, "user", copts...)
		if err != nil {
			t.Fatal(err)
		}
		uc.targets, uc.close = c.Targets, c.Close
		uc.call = func(ctx context.Context) error {
			path := "/ping"
			if uc.failing.Load() {
				path += "?fail=user-1"
			}
			return c.Invoke(ctx, "GET", path, nil, nil)
		}
	case "grpc":
		c, err := grpcclient.New(ctx, reg, "user", grpcclient.WithClientOptions(copts...))
		if err != nil {
			t.Fatal(err)
		}
		uc.targets, uc.close = c.Targets, c.Close
		ep := grpcclient.NewEndpoint(c, grpctest.SayMethod,
			func(_ context.Context, r any) (any, error) { return wrapperspb.String(r.(string)), nil },
			func(_ context.Context, r any) (any, error) { return r, nil },
			&wrapperspb.StringValue{}, grpcclient.Idempotent())
		uc.call = func(ctx context.Context) error {
			in := "id"
			if uc.failing.Load() {
				in = "on:user-1:fail:internal:boom"
			}
			_, err := ep(ctx, in)
			return err
		}
	default:
		t.Fatalf("no transport %q", transportName)
	}
	t.Cleanup(func() { uc.close() })
	return uc
}

// breaker returns the state of the client's breaker of instance id
// (closed if it has none).
func (uc *userClient) breaker(id string) outlier.State {
	for _, t := range uc.targets() {
		if t.Instance().ID == id && t.Breaker() != nil {
			return t.Breaker().State()
		}
	}
	return outlier.Closed
}

// callUntil calls until ok (checked before each call) holds: 400 calls
// and 20 s at most. Calls may fail (an instance going away).
func (uc *userClient) callUntil(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 400 && time.Now().Before(deadline); i++ {
		if ok() {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = uc.call(cctx)
		cancel()
		time.Sleep(5 * time.Millisecond)
	}
	if !ok() {
		t.Fatalf("%s client: %s: not within 400 calls or 20s", uc.name, what)
	}
}

// instanceValue reads name{service="user",instance=id} (a gauge's or a
// counter's value) and whether it exists.
func instanceValue(t *testing.T, r *prometheus.Registry, name, id string) (float64, bool) {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var svc, inst string
			for _, lp := range m.GetLabel() {
				switch lp.GetName() {
				case "service":
					svc = lp.GetValue()
				case "instance":
					inst = lp.GetValue()
				}
			}
			if svc == "user" && inst == id {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// instanceSeries lists the names of the series of instance id.
func instanceSeries(t *testing.T, r *prometheus.Registry, id string) string {
	t.Helper()
	mfs, err := r.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "instance" && l.GetValue() == id {
					out = append(out, mf.GetName())
				}
			}
		}
	}
	return strings.Join(out, " ")
}

// Two clients of one service in a process (bootstrap gives every client
// the same metrics.Client: two HTTP clients, or an HTTP and a gRPC
// client) share the series of an instance both send to. One closing, or
// dropping the instance from its set, must not take them while the other
// still sends to it: they were deleted, and the other's next pick brought
// picks_total back from 0, a counter reset (audit o6 R1). The last one's
// release still takes them, so the set stays bounded.
func TestClient_InstanceSeriesStayWhileAnotherClientServesIt(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		close bool // a closes; else a's registry drops user-1
	}{
		{"http", "http", true},
		{"grpc", "http", false},
		{"http", "grpc", true},
		{"http", "grpc", false},
	} {
		how := "drops user-1"
		if tc.close {
			how = "closes"
		}
		t.Run(fmt.Sprintf("%s client %s, %s client keeps it", tc.a, how, tc.b), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			u1 := startUser(t, "user-1")
			prom := prometheus.NewRegistry()
			obs := &releases{Client: metrics.NewClient(prom), ch: make(chan string, 16)}
			ca := newUserClient(t, ctx, tc.a, obs, []*userInstance{u1})
			cb := newUserClient(t, ctx, tc.b, obs, []*userInstance{u1})
			for _, c := range []*userClient{ca, cb} {
				if err := c.call(ctx); err != nil {
					t.Fatalf("%s client: %v", c.name, err)
				}
			}
			before := instanceSeries(t, prom, "user-1")
			if !strings.Contains(before, "warren_client_picks_total") || !strings.Contains(before, "warren_client_breaker_state") {
				t.Fatalf("series of user-1 after a call from each client: %q", before)
			}
			picks, _ := instanceValue(t, prom, "warren_client_picks_total", "user-1")
			if tc.close {
				ca.close()
			} else if err := ca.reg.Deregister(ctx, u1.rec); err != nil {
				t.Fatal(err)
			}
			obs.waitRelease(t, "user-1")
			if after := instanceSeries(t, prom, "user-1"); after != before {
				t.Errorf("series of user-1 before a's release: %q; after, while b still sends to it: %q", before, after)
			}
			if err := cb.call(ctx); err != nil {
				t.Fatal(err)
			}
			// At least one more than before (a hedge may add one): no reset.
			if v, _ := instanceValue(t, prom, "warren_client_picks_total", "user-1"); v < picks+1 {
				t.Errorf("picks_total{user-1} after b's next call = %v, want at least %v (a counter reset)", v, picks+1)
			}
			// The last client to hold user-1 lets it go: its series go.
			if err := cb.reg.Deregister(ctx, u1.rec); err != nil {
				t.Fatal(err)
			}
			obs.waitRelease(t, "user-1")
			if got := instanceSeries(t, prom, "user-1"); got != "" {
				t.Errorf("series of user-1 after every client released it: %q, want none", got)
			}
		})
	}
}

// warren_client_breaker_state of an instance two clients hold is the
// worst of their breakers (open over half-open over closed), not
// whichever client reported last: a client that had the instance ejected
// and readmitted set 0 while another still had it ejected, and one client
// letting the instance go took the series (and the ejection count) of an
// instance the other had ejected (audit o6 R1).
func TestClient_BreakerStateIsTheWorstAmongTheClientsOfAnInstance(t *testing.T) {
	// setup starts user-1 and user-2 and a gRPC client g that has user-1
	// ejected, and an HTTP client h that has it in rotation.
	setup := func(t *testing.T, ctx context.Context) (prom *prometheus.Registry, obs *releases, u1 *userInstance, g, h *userClient) {
		t.Helper()
		u1, u2 := startUser(t, "user-1"), startUser(t, "user-2")
		prom = prometheus.NewRegistry()
		obs = &releases{Client: metrics.NewClient(prom), ch: make(chan string, 16)}
		us := []*userInstance{u1, u2}
		// g keeps an ejection for the whole test; h's lasts 200 ms. One of
		// two may be ejected (the default 50 % keeps both in). Round robin
		// keeps sending to user-1 while it fails (P2C would shun it).
		g = newUserClient(t, ctx, "grpc", obs, us, client.WithBalancer(balancer.NewRoundRobin()), client.WithOutlier(outlier.WithConsecutiveFailures(3), outlier.WithMaxEjectionPercent(100), outlier.WithCooldown(5*time.Minute, 5*time.Minute)))
		h = newUserClient(t, ctx, "http", obs, us, client.WithBalancer(balancer.NewRoundRobin()), client.WithOutlier(outlier.WithConsecutiveFailures(3), outlier.WithMaxEjectionPercent(100), outlier.WithCooldown(200*time.Millisecond, time.Second)))
		for _, c := range []*userClient{g, h} {
			c.callUntil(t, ctx, "both instances picked", func() bool {
				_, ok1 := instanceValue(t, prom, "warren_client_picks_total", "user-1")
				_, ok2 := instanceValue(t, prom, "warren_client_picks_total", "user-2")
				return ok1 && ok2
			})
		}
		g.failing.Store(true)
		g.callUntil(t, ctx, "user-1 ejected", func() bool { return g.breaker("user-1") == outlier.Open })
		g.failing.Store(false)
		want(t, prom, "the gRPC client ejected user-1", 1, 1)
		return prom, obs, u1, g, h
	}

	t.Run("the client that ejected it keeps it", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		prom, obs, _, g, h := setup(t, ctx)
		// h ejects user-1 too, then readmits it: its closed breaker is not
		// the instance's state while g has it ejected.
		h.failing.Store(true)
		h.callUntil(t, ctx, "user-1 ejected", func() bool { return h.breaker("user-1") == outlier.Open })
		want(t, prom, "both clients ejected user-1", 1, 2)
		h.failing.Store(false)
		h.callUntil(t, ctx, "user-1 readmitted", func() bool { return h.breaker("user-1") == outlier.Closed })
		want(t, prom, "the HTTP client readmitted user-1, the gRPC client has it ejected", 1, 2)
		// h lets user-1 go: g, which has it ejected, still holds it.
		h.close()
		obs.waitRelease(t, "user-1")
		want(t, prom, "the HTTP client closed, the gRPC client has user-1 ejected", 1, 2)
		// g lets it go too: the series go.
		g.close()
		obs.waitRelease(t, "user-1")
		if got := instanceSeries(t, prom, "user-1"); got != "" {
			t.Errorf("series of user-1 after both clients closed: %q, want none", got)
		}
	})

	t.Run("the client that ejected it lets it go", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		prom, obs, u1, g, h := setup(t, ctx)
		// g drops user-1 (its breaker leaves open): the instance's state is
		// h's, closed; the ejection g made stays counted.
		if err := g.reg.Deregister(ctx, u1.rec); err != nil {
			t.Fatal(err)
		}
		obs.waitRelease(t, "user-1")
		want(t, prom, "the gRPC client dropped user-1, the HTTP client has it in rotation", 0, 1)
		picks, _ := instanceValue(t, prom, "warren_client_picks_total", "user-1")
		h.callUntil(t, ctx, "user-1 picked again", func() bool {
			v, _ := instanceValue(t, prom, "warren_client_picks_total", "user-1")
			return v > picks
		})
		want(t, prom, "the HTTP client sent to user-1 again", 0, 1)
	})
}

// want checks user-1's breaker_state and ejections_total.
func want(t *testing.T, prom *prometheus.Registry, step string, state, ejections float64) {
	t.Helper()
	if v, ok := instanceValue(t, prom, "warren_client_breaker_state", "user-1"); !ok || v != state {
		t.Errorf("%s: breaker_state{user-1} = %v (exists %v), want %v", step, v, ok, state)
	}
	if v, ok := instanceValue(t, prom, "warren_client_ejections_total", "user-1"); !ok || v != ejections {
		t.Errorf("%s: ejections_total{user-1} = %v (exists %v), want %v", step, v, ok, ejections)
	}
}
