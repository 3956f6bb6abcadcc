package grpcresolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/tlsconf"
	"github.com/warren-mesh/warren/framework/tlsconf/tlstest"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// regs are the real registries the tests run against: an embedded etcd
// and a `consul agent -dev` (bin/consul), shared by the package.
var regs *grpctest.Registries

func TestMain(m *testing.M) {
	r, err := grpctest.StartRegistries()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	regs = r
	code := m.Run()
	r.Close()
	os.Exit(code)
}

func openRegistry(t *testing.T, name string) registry.Registry { return regs.Open(t, name) }

// startApp runs an App with its own connection to the registry named by
// regName (an App closes its registry when it exits).
func startApp(t *testing.T, regName, svc, id string, opts ...app.Option) *grpctest.App {
	t.Helper()
	return grpctest.StartApp(t, openRegistry(t, regName), svc, id, append([]app.Option{app.WithGracePeriod(time.Second)}, opts...)...)
}

// seen makes up to max calls and returns the IDs that answered, stopping
// early once want answered (nil: never).
func seen(t *testing.T, cc *grpc.ClientConn, max int, want func(map[string]int) bool) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range max {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := grpctest.Say(ctx, cc, "id")
		cancel()
		if err == nil {
			got[id]++
		}
		if want != nil && want(got) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	return got
}

// A plain grpc-go client on warren:///echo with grpc's round_robin spreads
// calls over every instance a real registry lists, drops one that leaves
// and picks up one that joins.
func TestResolver_PlainGRPCClientFollowsDiscovery(t *testing.T) {
	for _, regName := range []string{"etcd", "consul"} {
		t.Run(regName, func(t *testing.T) {
			reg := openRegistry(t, regName)
			svc := "resolved" + regName
			a := startApp(t, regName, svc, "a")
			startApp(t, regName, svc, "b")
			startApp(t, regName, svc, "c")
			b, err := grpcresolver.NewBuilder(reg)
			if err != nil {
				t.Fatal(err)
			}
			cc, err := grpc.NewClient("warren:///"+svc, grpc.WithResolvers(b),
				grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			all := func(ids ...string) func(map[string]int) bool {
				return func(m map[string]int) bool {
					for _, id := range ids {
						if m[id] == 0 {
							return false
						}
					}
					return true
				}
			}
			if got := seen(t, cc, 2000, all("a", "b", "c")); !all("a", "b", "c")(got) {
				t.Fatalf("calls reached %v, want a, b and c", got)
			}

			if err := a.Shutdown(); err != nil {
				t.Fatalf("a: Run = %v", err)
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				got := seen(t, cc, 60, nil)
				if got["a"] == 0 && got["b"] > 0 && got["c"] > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("60s after a left, calls still reach %v", got)
				}
			}
			startApp(t, regName, svc, "d")
			if got := seen(t, cc, 4000, all("d")); got["d"] == 0 {
				t.Fatalf("calls after d joined reached %v, never d", got)
			}
		})
	}
}

// recorder is a resolver.ClientConn that keeps what the resolver tells
// the channel, to read the attributes a custom balancer would get.
type recorder struct {
	mu     sync.Mutex
	states []resolver.State
	errs   []error
}

func (r *recorder) UpdateState(s resolver.State) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
	return nil
}

func (r *recorder) ReportError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *recorder) NewAddress([]resolver.Address) {}

func (r *recorder) ParseServiceConfig(string) *serviceconfig.ParseResult { return nil }

func (r *recorder) last() (resolver.State, []error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 {
		return resolver.State{}, append([]error(nil), r.errs...), false
	}
	return r.states[len(r.states)-1], append([]error(nil), r.errs...), true
}

func target(svc string) resolver.Target {
	return resolver.Target{URL: *mustURL("warren:///" + svc)}
}

// Zone, weight and metadata of each instance ride in the attributes of
// its endpoint and the balancer attributes of its address; HTTP-only
// instances are left out.
func TestResolver_AttributesCarryTheRecord(t *testing.T) {
	reg := openRegistry(t, "etcd")
	startApp(t, "etcd", "attrs", "z", app.WithZone("eu-1"), app.WithWeight(7), app.WithMetadata(map[string]string{"shard": "3"}))
	// An HTTP-only instance of the same service.
	h, err := app.New("attrs", http.NotFoundHandler(), openRegistry(t, "etcd"), app.WithListen("127.0.0.1:0"), app.WithID("http-only"), app.WithSignals(false), app.WithGracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	hctx, hcancel := context.WithCancel(context.Background())
	hdone := make(chan error, 1)
	go func() { hdone <- h.Run(hctx) }()
	defer func() { hcancel(); <-hdone }()
	<-h.Ready()

	b, _ := grpcresolver.NewBuilder(reg)
	rec := &recorder{}
	r, err := b.Build(target("attrs"), rec, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, _, ok := rec.last()
		if ok && len(st.Endpoints) == 1 {
			inst, found := grpcresolver.InstanceOf(st.Endpoints[0].Attributes)
			if !found || inst.ID != "z" || inst.Zone != "eu-1" || inst.Weight != 7 || inst.Metadata["shard"] != "3" {
				t.Fatalf("endpoint attributes carry %+v (found %v)", inst, found)
			}
			if a, _ := grpcresolver.InstanceOf(st.Addresses[0].BalancerAttributes); a.ID != "z" {
				t.Fatal("address balancer attributes do not carry the record")
			}
			// Not the subchannel's attributes: grpc-go compares those when a
			// balancer updates a subchannel's addresses, and a changed record
			// would then tear down a ready connection.
			if st.Addresses[0].Attributes != nil || st.Endpoints[0].Addresses[0].Attributes != nil {
				t.Fatalf("the record rides in the address's subchannel attributes: %v", st.Addresses[0])
			}
			if !strings.HasPrefix(st.Addresses[0].Addr, "127.0.0.1:") {
				t.Fatalf("address %q", st.Addresses[0].Addr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no state with exactly the gRPC instance within 30s: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Close()
	r.Close() // idempotent
}

// A registry that cannot be asked: the resolver tells the channel why and
// keeps trying; Close stops it.
func TestResolver_ReportsDiscoveryErrors(t *testing.T) {
	b, _ := grpcresolver.NewBuilder(failing{}, grpcresolver.WithOpenTimeout(time.Second))
	rec := &recorder{}
	r, err := b.Build(target("x"), rec, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, errs, _ := rec.last(); len(errs) >= 2 && strings.Contains(errs[0].Error(), "registry down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("discovery errors not reported twice within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.Close()
	if _, err := b.Build(target("Not A Name!"), rec, resolver.BuildOptions{}); err == nil {
		t.Fatal("Build accepted an invalid service name")
	}
	if _, err := grpcresolver.NewBuilder(nil); err == nil {
		t.Fatal("NewBuilder(nil) succeeded")
	}
}

type failing struct{}

func (failing) Instancer(context.Context, string) (sd.Instancer, error) {
	return nil, errors.New("registry down")
}

// The channel hears only of changes to what it routes by: an instance
// without a gRPC endpoint coming or going leaves the state as it was and
// is not passed on (each UpdateState makes grpc-go walk every endpoint
// through the balancer), while a changed record of a routed instance is.
func TestResolver_TellsTheChannelOnlyOfChanges(t *testing.T) {
	reg := openRegistry(t, "etcd")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	grpcInst := func(id string, port int, md map[string]string) registry.Instance {
		return registry.Instance{ID: id, Name: "quiet", Endpoints: []string{registry.EndpointURL("grpc", "127.0.0.1", port)}, Metadata: md}
	}
	httpOnly := registry.Instance{ID: "h", Name: "quiet", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", 7001)}}

	b, _ := grpcresolver.NewBuilder(reg)
	rec := &recorder{}
	r, err := b.Build(target("quiet"), rec, resolver.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// waitFor waits for the n-th state and returns all of them.
	waitFor := func(n int) []resolver.State {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			rec.mu.Lock()
			states := slices.Clone(rec.states)
			rec.mu.Unlock()
			if len(states) >= n {
				return states
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d states within 30s, want %d: %+v", len(states), n, states)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ids := func(st resolver.State) []string {
		var out []string
		for _, ep := range st.Endpoints {
			inst, _ := grpcresolver.InstanceOf(ep.Attributes)
			out = append(out, inst.ID+inst.Metadata["v"])
		}
		slices.Sort(out)
		return out
	}
	waitFor(1) // the empty set
	// Each step waits for its outcome before the next: the registry may
	// hand a slow subscriber only the latest of several quick changes
	// (seen on a loaded machine: the empty set, then a2+b at once), which
	// is right, but would hide a state the resolver should not have sent.
	// For a change the channel must not hear of, the barrier is the
	// registry's own view (a second instancer of the service) plus room
	// for a wrong state to arrive before the next change is made.
	view, err := reg.Instancer(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	defer view.Stop()
	viewHas := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var got []string
			for _, s := range view.(interface{ State() sd.Event }).State().Instances {
				inst, err := registry.ParseInstance(s)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, inst.ID+inst.Metadata["v"])
			}
			slices.Sort(got)
			if slices.Equal(got, want) {
				time.Sleep(200 * time.Millisecond) // room for a wrong state
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the registry's view is %v within 30s, want %v", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	steps := []struct {
		do     func() error
		view   []string // the service's set once done
		states int      // states the channel should have been told by then
	}{
		{func() error { return reg.Register(ctx, httpOnly) }, []string{"h"}, 1},                                               // not passed on
		{func() error { return reg.Register(ctx, grpcInst("a", 7002, nil)) }, []string{"a", "h"}, 2},                          // a
		{func() error { return reg.Deregister(ctx, httpOnly) }, []string{"a"}, 2},                                             // not passed on
		{func() error { return reg.Register(ctx, grpcInst("b", 7003, nil)) }, []string{"a", "b"}, 3},                          // a, b
		{func() error { return reg.Register(ctx, grpcInst("a", 7002, map[string]string{"v": "2"})) }, []string{"a2", "b"}, 4}, // a's record changed
	}
	for _, step := range steps {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		viewHas(step.view...)
		waitFor(step.states)
	}
	states := waitFor(4)
	var got [][]string
	for _, st := range states {
		got = append(got, ids(st))
	}
	want := [][]string{nil, {"a"}, {"a", "b"}, {"a2", "b"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the channel was told %v, want %v", got, want)
	}
}

// A plain grpc-go client with TLS credentials on warren:/// verifies each
// instance's own address, as Warren's clients do: certificates made as
// docs/security.md says (a SAN for the address the instance is advertised
// on, and nothing else) are accepted. grpc-go used to verify the target's
// authority, the service name, and refused every instance (report j50c).
func TestResolver_TLSVerifiesTheInstanceAddress(t *testing.T) {
	ca := tlstest.NewCA(t)
	srv, cli := ca.IssueFor("server", "127.0.0.1"), ca.IssueFor("client", "127.0.0.1")
	scfg, err := tlsconf.Server(srv.CertFile, srv.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := tlsconf.Client(ca.CertFile, cli.CertFile, cli.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	reg := openRegistry(t, "etcd")
	svc := "resolvedtls"
	grpctest.StartAppServing(t, openRegistry(t, "etcd"), svc, "a", []grpcserver.Option{grpcserver.WithTLS(scfg)})
	b, err := grpcresolver.NewBuilder(reg, grpcresolver.WithSchemes("grpcs"))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("warren:///"+svc, grpc.WithResolvers(b), grpc.WithTransportCredentials(credentials.NewTLS(ccfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if id, err := grpctest.Say(ctx, cc, "id"); err != nil || id != "a" {
		t.Fatalf("call over TLS = %q, %v; want a", id, err)
	}
}

// A call on a service with no gRPC instance fails at once, naming the
// service (with grpc-go's default pick_first; round_robin keeps its own
// "no children to pick from", which ignores resolver errors), not
// "produced zero addresses"; once an instance registers, calls reach it.
func TestResolver_NoInstanceIsNamedInTheCallsError(t *testing.T) {
	reg := openRegistry(t, "etcd")
	svc := "resolvedempty"
	b, err := grpcresolver.NewBuilder(reg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("warren:///"+svc, grpc.WithResolvers(b),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The resolver passes the empty set on, then reports why: a call in
	// between sees pick_first's own "produced zero addresses". Calls fail
	// at once either way; within a few the reason is the resolver's.
	for i := 0; ; i++ {
		_, err = grpctest.Say(ctx, cc, "id")
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("call with no instance = %v, want Unavailable", err)
		}
		if strings.Contains(err.Error(), "no instance of "+svc) {
			break
		}
		if i == 200 {
			t.Fatalf("200 calls with no instance, the last = %v; want one naming %q", err, "no instance of "+svc)
		}
		time.Sleep(10 * time.Millisecond)
	}
	startApp(t, "etcd", svc, "a")
	if got := seen(t, cc, 2000, func(m map[string]int) bool { return m["a"] > 0 }); got["a"] == 0 {
		t.Fatalf("calls after a registered reached %v", got)
	}
}
