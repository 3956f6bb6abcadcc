package xds

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/registry"
)

// EnvoyListener and EnvoyRoute name the listener and route configuration
// served to Envoy nodes: one HTTP listener whose routes send /NAME/… to
// cluster NAME.
const (
	EnvoyListener = "warren-http"
	EnvoyRoute    = "warren-http"
)

// group is what one kind of client is served.
type group struct {
	schemes []string // endpoint schemes, in order of preference
	envoy   bool     // an Envoy (a listener with an address) rather than proxyless gRPC
}

// resources builds every resource of one group from snap: per service a
// cluster (EDS over ADS, round robin), its endpoints by zone (locality,
// weighted by the sum of its instances' weights), and for gRPC clients an
// API listener named after the service with a route to its cluster; for
// Envoy one listener on listen whose routes pick the cluster by path
// prefix. A service the registry has not listed yet (edge.Service.Unlisted)
// gets its cluster, listener and route but no load assignment: EDS is not
// a state-of-the-world type, so a client that has the assignment from
// before keeps it, and one that has none waits, where an empty assignment
// would leave both with no endpoint at all.
func resources(snap edge.Snapshot, g group, listen *core.Address) map[resource.Type][]types.Resource {
	out := map[resource.Type][]types.Resource{}
	var envoyRoutes []*route.Route
	for _, svc := range snap.Services {
		out[resource.ClusterType] = append(out[resource.ClusterType], makeCluster(svc.Name))
		if !svc.Unlisted {
			out[resource.EndpointType] = append(out[resource.EndpointType], loadAssignment(svc, g.schemes))
		}
		if g.envoy {
			envoyRoutes = append(envoyRoutes, &route.Route{
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/" + svc.Name + "/"}},
				Action: &route.Route_Route{Route: &route.RouteAction{
					ClusterSpecifier: &route.RouteAction_Cluster{Cluster: svc.Name},
					PrefixRewrite:    "/",
				}},
			})
			continue
		}
		// Proxyless gRPC: the target xds:///NAME asks for listener NAME.
		out[resource.ListenerType] = append(out[resource.ListenerType], apiListener(svc.Name))
		out[resource.RouteType] = append(out[resource.RouteType], &route.RouteConfiguration{
			Name: svc.Name,
			VirtualHosts: []*route.VirtualHost{{
				Name:    svc.Name,
				Domains: []string{"*"},
				Routes: []*route.Route{{
					Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: ""}},
					Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: svc.Name}}},
				}},
			}},
		})
	}
	if g.envoy {
		out[resource.RouteType] = []types.Resource{&route.RouteConfiguration{
			Name:         EnvoyRoute,
			VirtualHosts: []*route.VirtualHost{{Name: "warren", Domains: []string{"*"}, Routes: envoyRoutes}},
		}}
		out[resource.ListenerType] = []types.Resource{&listener.Listener{
			Name:    EnvoyListener,
			Address: listen,
			FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
				Name:       wellknown.HTTPConnectionManager,
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(connectionManager(EnvoyRoute))},
			}}}},
		}}
	}
	return out
}

func makeCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{
			EdsConfig: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		},
		ConnectTimeout: durationpb.New(2 * time.Second),
		LbPolicy:       cluster.Cluster_ROUND_ROBIN,
	}
}

// sameAddress lists the IDs of svc's instances whose endpoint of schemes
// has the address of an instance listed before them. An assignment that
// names one address twice is refused whole by grpc-go (a NACK), which then
// keeps its old endpoints — a new instance never got a call — and asks
// again at once, thousands of times a second (report j49b). Two records of
// one address are a process restarted under a new ID before its old
// record expired, or a forged one: the first listed is served.
func sameAddress(svc edge.Service, schemes []string) []string {
	var dups []string
	seen := map[string]bool{}
	for _, inst := range svc.Instances {
		ep, ok := inst.Endpoint(schemes...)
		if !ok {
			continue
		}
		_, hp, _ := strings.Cut(ep, "://")
		if seen[hp] {
			dups = append(dups, inst.ID)
		}
		seen[hp] = true
	}
	return dups
}

// loadAssignment groups a service's instances by zone. Instances without
// an endpoint of the group's schemes, or with the address of one before
// them (sameAddress), are left out.
func loadAssignment(svc edge.Service, schemes []string) *endpoint.ClusterLoadAssignment {
	byZone := map[string]*endpoint.LocalityLbEndpoints{}
	dups := sameAddress(svc, schemes)
	for _, inst := range svc.Instances {
		ep, ok := inst.Endpoint(schemes...)
		if !ok || slices.Contains(dups, inst.ID) {
			continue
		}
		_, host, port, err := registry.ParseEndpoint(ep)
		if err != nil {
			continue
		}
		w := edge.Weight(inst)
		loc := byZone[inst.Zone]
		if loc == nil {
			loc = &endpoint.LocalityLbEndpoints{Locality: &core.Locality{Zone: inst.Zone}, LoadBalancingWeight: wrapperspb.UInt32(0)}
			byZone[inst.Zone] = loc
		}
		loc.LoadBalancingWeight.Value += uint32(w)
		loc.LbEndpoints = append(loc.LbEndpoints, &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(host, port),
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(uint32(w)),
			Metadata:            instanceMetadata(inst),
		})
	}
	fitWeights(byZone)
	cla := &endpoint.ClusterLoadAssignment{ClusterName: svc.Name}
	zones := make([]string, 0, len(byZone))
	for z := range byZone {
		zones = append(zones, z)
	}
	sort.Strings(zones)
	for _, z := range zones {
		cla.Endpoints = append(cla.Endpoints, byZone[z])
	}
	return cla
}

// fitWeights keeps the weights of an assignment within Envoy's rules:
// every endpoint's and locality's weight at least 1, and the sum of all
// endpoints' weights (so each locality's, and the localities' sum) at
// most 2^32-1. Weights are at most edge.MaxWeight, so only thousands of
// instances at that weight need it; they are then scaled down, in
// proportion, each to at least 1.
func fitWeights(byZone map[string]*endpoint.LocalityLbEndpoints) {
	var total, n uint64
	for _, loc := range byZone {
		for _, ep := range loc.LbEndpoints {
			total += uint64(ep.LoadBalancingWeight.GetValue())
			n++
		}
	}
	if total <= math.MaxUint32 {
		return
	}
	room := uint64(math.MaxUint32) - n // each rounded-up weight adds at most 1
	for _, loc := range byZone {
		var sum uint64
		for _, ep := range loc.LbEndpoints {
			w := max(uint64(ep.LoadBalancingWeight.GetValue())*room/total, 1)
			ep.LoadBalancingWeight.Value = uint32(w)
			sum += w
		}
		loc.LoadBalancingWeight.Value = uint32(sum)
	}
}

// instanceMetadata carries the instance's ID and version to the proxy
// (filter metadata "warren"), for logs and subset routing.
func instanceMetadata(inst registry.Instance) *core.Metadata {
	fields := map[string]any{"id": inst.ID}
	if inst.Version != "" {
		fields["version"] = inst.Version
	}
	st, err := structpb.NewStruct(fields)
	if err != nil {
		return nil // only strings: cannot fail
	}
	return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"warren": st}}
}

func socketAddress(host string, port int) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Protocol:      core.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}

func apiListener(name string) *listener.Listener {
	return &listener.Listener{
		Name:        name,
		ApiListener: &listener.ApiListener{ApiListener: mustAny(connectionManager(name))},
	}
}

func connectionManager(routeName string) *hcm.HttpConnectionManager {
	return &hcm.HttpConnectionManager{
		CodecType:  hcm.HttpConnectionManager_AUTO,
		StatPrefix: routeName,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: routeName,
			ConfigSource: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}},
	}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic("xds: marshal " + strconv.Quote(err.Error())) // only fixed, well-formed messages reach here
	}
	return a
}
