package xds

import (
	"slices"
	"testing"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
)

// What docs/edge.md's xDS table and text state for every resource and
// default, none of which the behaviour tests (a grpc-go client, Envoy's
// proto validation) pin down: a cluster is EDS over ADS, round robin,
// with a 2 s connect timeout; an endpoint is HEALTHY with its instance's
// weight, 100 when unset; Envoy's route sends /NAME/… to cluster NAME
// with the prefix removed; Envoy's listener is on 0.0.0.0:10000 by
// default; gRPC clients get an instance's grpc endpoint and Envoy its
// http one; the Envoy bootstrap's admin listener is 127.0.0.1:9901.
func TestResources_TheDocumentedShapeAndDefaults(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if !slices.Equal(s.o.grpcSchemes, []string{"grpc"}) || !slices.Equal(s.o.envoySchemes, []string{"http"}) {
		t.Errorf("default schemes: gRPC %v, Envoy %v; documented grpc and http", s.o.grpcSchemes, s.o.envoySchemes)
	}
	if sa := s.o.envoyListen.GetSocketAddress(); sa.GetAddress() != "0.0.0.0" || sa.GetPortValue() != 10000 {
		t.Errorf("default Envoy listener %v; documented 0.0.0.0:10000", sa)
	}

	snap := edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{
		{ID: "u1", Zone: "zone-a", Endpoints: []string{"http://127.0.0.1:8001", "grpc://127.0.0.1:9001"}},
	}}}}
	for _, g := range []group{{schemes: s.o.grpcSchemes}, {schemes: s.o.envoySchemes, envoy: true}} {
		res := resources(snap, g, s.o.envoyListen)
		c := res[resource.ClusterType][0].(*cluster.Cluster)
		if c.GetType() != cluster.Cluster_EDS || c.GetEdsClusterConfig().GetEdsConfig().GetAds() == nil ||
			c.GetLbPolicy() != cluster.Cluster_ROUND_ROBIN || c.GetConnectTimeout().AsDuration() != 2*time.Second {
			t.Errorf("envoy=%t: cluster %v; documented EDS over ADS, round robin, 2 s connect timeout", g.envoy, c)
		}
		cla := res[resource.EndpointType][0].(*endpoint.ClusterLoadAssignment)
		ep := cla.GetEndpoints()[0].GetLbEndpoints()[0]
		port := ep.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
		if ep.GetHealthStatus() != core.HealthStatus_HEALTHY || ep.GetLoadBalancingWeight().GetValue() != 100 {
			t.Errorf("envoy=%t: endpoint %v; documented HEALTHY, weight 100 when unset", g.envoy, ep)
		}
		if want := map[bool]uint32{false: 9001, true: 8001}[g.envoy]; port != want {
			t.Errorf("envoy=%t: endpoint port %d, want %d (gRPC clients the grpc endpoint, Envoy the http one)", g.envoy, port, want)
		}
		if !g.envoy {
			continue
		}
		rc := res[resource.RouteType][0].(*route.RouteConfiguration)
		r := rc.GetVirtualHosts()[0].GetRoutes()[0]
		if r.GetMatch().GetPrefix() != "/user/" || r.GetRoute().GetCluster() != "user" || r.GetRoute().GetPrefixRewrite() != "/" {
			t.Errorf("Envoy route %v; documented /user/… to cluster user, prefix removed", r)
		}
		l := res[resource.ListenerType][0].(*listener.Listener)
		if l.GetName() != "warren-http" || l.GetAddress().GetSocketAddress().GetPortValue() != 10000 {
			t.Errorf("Envoy listener %v; documented warren-http on the Envoy listen address", l)
		}
	}

	b, err := EnvoyBootstrap(BootstrapConfig{Server: "127.0.0.1:18000"})
	if err != nil {
		t.Fatal(err)
	}
	var bs bootstrap.Bootstrap
	if err := protojson.Unmarshal(b, &bs); err != nil {
		t.Fatal(err)
	}
	if a := bs.GetAdmin().GetAddress().GetSocketAddress(); a.GetAddress() != "127.0.0.1" || a.GetPortValue() != 9901 {
		t.Errorf("Envoy bootstrap admin %v; documented 127.0.0.1:9901", a)
	}
	if c := bs.GetStaticResources().GetClusters()[0]; c.GetName() != "warren-xds" {
		t.Errorf("Envoy bootstrap's control-plane cluster %q; documented warren-xds", c.GetName())
	}
}
