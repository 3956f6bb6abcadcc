package xds

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/go-kit/log"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
)

func TestResources_ZonesAreLocalitiesWeightedByTheirInstances(t *testing.T) {
	snap := edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{
		{ID: "u1", Zone: "zone-a", Weight: 30, Endpoints: []string{"http://127.0.0.1:8001", "grpc://127.0.0.1:9001"}},
		{ID: "u2", Zone: "zone-a", Endpoints: []string{"grpc://127.0.0.1:9002"}},
		{ID: "u3", Zone: "zone-b", Weight: 50, Endpoints: []string{"grpc://127.0.0.1:9003"}},
		{ID: "u4", Zone: "zone-b", Endpoints: []string{"http://127.0.0.1:8004"}}, // no gRPC endpoint
	}}}}
	res := resources(snap, group{schemes: []string{"grpc"}}, nil)
	cla := res[resource.EndpointType][0].(*endpoint.ClusterLoadAssignment)
	if cla.ClusterName != "user" || len(cla.Endpoints) != 2 {
		t.Fatalf("load assignment %v: want cluster user with two localities", cla)
	}
	want := map[string]struct {
		weight uint32
		ports  []uint32
	}{"zone-a": {130, []uint32{9001, 9002}}, "zone-b": {50, []uint32{9003}}}
	for _, loc := range cla.Endpoints {
		w := want[loc.Locality.GetZone()]
		if loc.LoadBalancingWeight.GetValue() != w.weight || len(loc.LbEndpoints) != len(w.ports) {
			t.Fatalf("locality %v: want weight %d and ports %v", loc, w.weight, w.ports)
		}
		for i, ep := range loc.LbEndpoints {
			if got := ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue(); got != w.ports[i] {
				t.Fatalf("locality %s endpoint %d: port %d, want %d", loc.Locality.GetZone(), i, got, w.ports[i])
			}
		}
	}
	if l := res[resource.ListenerType]; len(l) != 1 || l[0].(*listener.Listener).GetName() != "user" || l[0].(*listener.Listener).GetApiListener() == nil {
		t.Fatalf("gRPC clients get %v; want one API listener named user", l)
	}

	// Envoy: HTTP endpoints, one listener with an address, a route per service.
	env := resources(snap, group{schemes: []string{"http"}, envoy: true}, socketAddress("127.0.0.1", 10000))
	cla = env[resource.EndpointType][0].(*endpoint.ClusterLoadAssignment)
	n := 0
	for _, loc := range cla.Endpoints {
		n += len(loc.LbEndpoints)
	}
	if n != 2 {
		t.Fatalf("Envoy endpoints %v: want the two HTTP ones", cla)
	}
	if l := env[resource.ListenerType]; len(l) != 1 || l[0].(*listener.Listener).GetName() != EnvoyListener {
		t.Fatalf("Envoy gets listeners %v", l)
	}
	for typ, rs := range env {
		for _, r := range rs {
			if v, ok := r.(interface{ ValidateAll() error }); ok {
				if err := v.ValidateAll(); err != nil {
					t.Errorf("%s: %v", typ, err)
				}
			}
		}
	}
}

func TestApply_ServesEnvoyAndGRPCNodesTheirOwnSnapshots(t *testing.T) {
	s, err := New(WithEnvoyListen("127.0.0.1:10001"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := s.Apply(context.Background(), edge.Snapshot{Services: []edge.Service{{Name: "user"}}}); err != nil {
		t.Fatal(err)
	}
	for group, listener := range map[string]string{groupGRPC: "user", groupEnvoy: EnvoyListener} {
		snap, err := s.cache.GetSnapshot(group)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := snap.GetResources(resource.ListenerType)[listener]; !ok || snap.GetVersion(resource.ListenerType) != "1" {
			t.Fatalf("%s nodes: no listener %q at version 1", group, listener)
		}
	}
	if _, err := New(WithEnvoyListen("nowhere")); err == nil {
		t.Fatal("a bad Envoy listener address was accepted")
	}
}

func TestEnvoyBootstrap_PassesEnvoysProtoValidationAndPointsAtTheServer(t *testing.T) {
	b, err := EnvoyBootstrap(BootstrapConfig{Server: "127.0.0.1:18000", Zone: "zone-a"})
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrap.Bootstrap
	if err := protojson.Unmarshal(b, &bs); err != nil {
		t.Fatalf("the bootstrap does not read back: %v\n%s", err, b)
	}
	if err := bs.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	sa := bs.StaticResources.Clusters[0].LoadAssignment.Endpoints[0].LbEndpoints[0].GetEndpoint().Address.GetSocketAddress()
	if sa.Address != "127.0.0.1" || sa.GetPortValue() != 18000 || bs.DynamicResources.GetLdsConfig().GetAds() == nil || bs.Node.Locality.Zone != "zone-a" {
		t.Fatalf("bootstrap does not take LDS over ADS from 127.0.0.1:18000:\n%s", b)
	}
	if _, err := EnvoyBootstrap(BootstrapConfig{Server: "no-port"}); err == nil {
		t.Fatal("a server without a port was accepted")
	}
	g, err := GRPCBootstrap(BootstrapConfig{Server: "127.0.0.1:18000"})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Servers []struct {
			URI string `json:"server_uri"`
		} `json:"xds_servers"`
	}
	if err := json.Unmarshal(g, &doc); err != nil || len(doc.Servers) != 1 || doc.Servers[0].URI != "127.0.0.1:18000" || !strings.Contains(string(g), `"insecure"`) {
		t.Fatalf("gRPC bootstrap %s: %v", g, err)
	}
}

// A snapshot whose only change is an error (a registry outage) publishes
// nothing new: clients are not pushed the same resources again.
func TestSync_PublishesOnlyWhenTheSetChanges(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx := context.Background()
	u := edge.Service{Name: "user", Instances: []registry.Instance{{ID: "u1", Name: "user", Endpoints: []string{"grpc://127.0.0.1:9001"}}}}
	for i, c := range []struct {
		svc  edge.Service
		want bool
	}{
		{u, true},
		{edge.Service{Name: u.Name, Instances: u.Instances, Err: errors.New("etcd: unreachable")}, false},
		{u, false},
		{edge.Service{Name: "user"}, true},
	} {
		got, err := s.Sync(ctx, edge.Snapshot{Services: []edge.Service{c.svc}})
		if err != nil || got != c.want {
			t.Fatalf("sync %d: published %t, %v; want %t", i, got, err, c.want)
		}
	}
}

// TLS to the instances is not set up, so a scheme that needs it is
// refused rather than served as plaintext (tester's finding 7).
func TestNew_RefusesSchemesThatNeedTLS(t *testing.T) {
	for _, opt := range []Option{WithGRPCSchemes("grpcs"), WithGRPCSchemes("grpc", "grpcs"), WithEnvoySchemes("https"), WithEnvoySchemes("http", "https")} {
		if _, err := New(opt); !errors.Is(err, ErrTLSScheme) {
			t.Errorf("got %v; want ErrTLSScheme", err)
		}
	}
}

// Instances with no endpoint of the served schemes are named in one
// warning per change of that list, not one per snapshot.
func TestSync_WarnsOncePerChangeOfTheInstancesLeftOut(t *testing.T) {
	var logs strings.Builder
	s, err := New(WithLogger(log.NewLogfmtLogger(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	tlsOnly := registry.Instance{ID: "u-tls", Name: "user", Endpoints: []string{"https://127.0.0.1:8443", "grpcs://127.0.0.1:9443"}}
	plain := func(port int) registry.Instance {
		return registry.Instance{ID: "u" + strconv.Itoa(port), Name: "user", Endpoints: []string{"http://127.0.0.1:" + strconv.Itoa(port), "grpc://127.0.0.1:" + strconv.Itoa(port+1)}}
	}
	for _, insts := range [][]registry.Instance{{tlsOnly, plain(8001)}, {tlsOnly, plain(8001), plain(8003)}} {
		if _, err := s.Sync(context.Background(), edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: insts}}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "instances left out"); n != 1 || !strings.Contains(logs.String(), "u-tls") || strings.Contains(logs.String(), "u8001") {
		t.Fatalf("%d warnings; want one naming u-tls only:\n%s", n, logs.String())
	}
}

// Weights of 2^32 and above used to wrap (2^32 became 0: no traffic, and
// an EDS update Envoy rejects); they count as edge.MaxWeight, the same
// as in nginx, and thousands of instances at that weight are scaled so
// that every sum fits Envoy's uint32.
func TestResources_HugeWeightsAreClampedNotWrapped(t *testing.T) {
	snap := edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{
		{ID: "u1", Zone: "zone-a", Weight: 1 << 32, Endpoints: []string{"grpc://127.0.0.1:9001"}},
		{ID: "u2", Zone: "zone-a", Weight: 5_000_000_000, Endpoints: []string{"grpc://127.0.0.1:9002"}},
		{ID: "u3", Zone: "zone-b", Weight: 100, Endpoints: []string{"grpc://127.0.0.1:9003"}},
	}}}}
	cla := resources(snap, group{schemes: []string{"grpc"}}, nil)[resource.EndpointType][0].(*endpoint.ClusterLoadAssignment)
	if err := cla.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	for _, loc := range cla.Endpoints {
		for _, ep := range loc.LbEndpoints {
			port := ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
			want := uint32(edge.MaxWeight)
			if port == 9003 {
				want = 100
			}
			if got := ep.LoadBalancingWeight.GetValue(); got != want {
				t.Errorf("endpoint :%d weight %d, want %d", port, got, want)
			}
		}
	}
	if w := cla.Endpoints[0].LoadBalancingWeight.GetValue(); w != 2*edge.MaxWeight {
		t.Errorf("zone-a weight %d, want %d", w, 2*edge.MaxWeight)
	}

	// 5000 instances at the largest weight in one zone, one small one in
	// another: every weight ≥ 1 and no sum past 2^32-1.
	var many []registry.Instance
	for i := range 5000 {
		many = append(many, registry.Instance{ID: "m" + strconv.Itoa(i), Zone: "big", Weight: 1 << 40, Endpoints: []string{"grpc://127.0.0.1:" + strconv.Itoa(10000+i)}})
	}
	many = append(many, registry.Instance{ID: "small", Zone: "small", Weight: 1, Endpoints: []string{"grpc://127.0.0.1:9999"}})
	cla = resources(edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: many}}}, group{schemes: []string{"grpc"}}, nil)[resource.EndpointType][0].(*endpoint.ClusterLoadAssignment)
	var all uint64
	for _, loc := range cla.Endpoints {
		var sum uint64
		for _, ep := range loc.LbEndpoints {
			if ep.LoadBalancingWeight.GetValue() < 1 {
				t.Fatalf("an endpoint of weight 0 in %s", loc.Locality.GetZone())
			}
			sum += uint64(ep.LoadBalancingWeight.GetValue())
		}
		if sum != uint64(loc.LoadBalancingWeight.GetValue()) || loc.LoadBalancingWeight.GetValue() < 1 {
			t.Fatalf("locality %s weight %d, its endpoints sum to %d", loc.Locality.GetZone(), loc.LoadBalancingWeight.GetValue(), sum)
		}
		all += sum
	}
	if all > 1<<32-1 {
		t.Fatalf("the weights sum to %d, past 2^32-1", all)
	}
}

// Two instances at one address: the assignment names it once (the first
// listed), as grpc-go refuses an assignment that names an address twice
// and keeps its old endpoints (report j49b); the second is reported as
// left out.
func TestResources_AnAddressIsServedOnce(t *testing.T) {
	svc := edge.Service{Name: "user", Instances: []registry.Instance{
		{ID: "u1", Endpoints: []string{"grpc://127.0.0.1:9001"}},
		{ID: "u1-old", Endpoints: []string{"grpc://127.0.0.1:9001"}},
		{ID: "u2", Endpoints: []string{"grpc://127.0.0.1:9002"}},
	}}
	cla := resources(edge.Snapshot{Services: []edge.Service{svc}}, group{schemes: []string{"grpc"}}, nil)[resource.EndpointType][0].(*endpoint.ClusterLoadAssignment)
	var ports []uint32
	for _, loc := range cla.Endpoints {
		for _, ep := range loc.LbEndpoints {
			ports = append(ports, ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue())
		}
	}
	if !slices.Equal(ports, []uint32{9001, 9002}) {
		t.Fatalf("endpoints at ports %v, want 9001 once and 9002", ports)
	}
	if d := sameAddress(svc, []string{"grpc"}); !slices.Equal(d, []string{"u1-old"}) {
		t.Fatalf("sameAddress = %v, want [u1-old]", d)
	}
}
