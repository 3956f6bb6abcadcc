package xds

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrap "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// BootstrapConfig says where a proxy or client finds the control plane
// and who it is.
type BootstrapConfig struct {
	// Server is the control plane's host:port.
	Server string
	// NodeID names the node (default "warren-edge"); Cluster is Envoy's
	// service cluster (default "warren-edge").
	NodeID, Cluster string
	// Zone is the node's own locality zone (optional).
	Zone string
	// Admin is Envoy's admin listener, host:port (default 127.0.0.1:9901).
	Admin string
}

// xdsCluster names the static cluster through which Envoy reaches the
// control plane.
const xdsCluster = "warren-xds"

func hostPort(s string) (string, int, error) {
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 || host == "" {
		return "", 0, fmt.Errorf("%q: want host:port", s)
	}
	return host, port, nil
}

// EnvoyBootstrap returns an Envoy v3 bootstrap (JSON) that takes its
// listeners, routes, clusters and endpoints from the control plane over
// ADS (gRPC, HTTP/2). It is checked against Envoy's own proto constraints;
// no Envoy binary runs in Warren's tests (see docs/edge.md).
func EnvoyBootstrap(c BootstrapConfig) ([]byte, error) {
	if c.NodeID == "" {
		c.NodeID = "warren-edge"
	}
	if c.Cluster == "" {
		c.Cluster = "warren-edge"
	}
	if c.Admin == "" {
		c.Admin = "127.0.0.1:9901"
	}
	host, port, err := hostPort(c.Server)
	if err != nil {
		return nil, fmt.Errorf("xds: bootstrap server: %w", err)
	}
	ahost, aport, err := hostPort(c.Admin)
	if err != nil {
		return nil, fmt.Errorf("xds: bootstrap admin: %w", err)
	}
	ads := &core.ConfigSource{
		ResourceApiVersion:    core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
	}
	b := &bootstrap.Bootstrap{
		Node: &core.Node{Id: c.NodeID, Cluster: c.Cluster, Locality: &core.Locality{Zone: c.Zone}},
		DynamicResources: &bootstrap.Bootstrap_DynamicResources{
			AdsConfig: &core.ApiConfigSource{
				ApiType:             core.ApiConfigSource_GRPC,
				TransportApiVersion: core.ApiVersion_V3,
				GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: xdsCluster},
				}}},
			},
			LdsConfig: ads,
			CdsConfig: ads,
		},
		StaticResources: &bootstrap.Bootstrap_StaticResources{Clusters: []*cluster.Cluster{{
			Name:                 xdsCluster,
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS},
			ConnectTimeout:       durationpb.New(2 * time.Second),
			TypedExtensionProtocolOptions: map[string]*anypb.Any{
				"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(&httpopts.HttpProtocolOptions{
					UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
						ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &core.Http2ProtocolOptions{}},
					}},
				}),
			},
			LoadAssignment: &endpoint.ClusterLoadAssignment{
				ClusterName: xdsCluster,
				Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
					HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socketAddress(host, port)}},
				}}}},
			},
		}}},
		Admin: &bootstrap.Admin{Address: socketAddress(ahost, aport)},
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("xds: bootstrap: %w", err)
	}
	out, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("xds: bootstrap: %w", err)
	}
	return append(out, '\n'), nil
}

// GRPCBootstrap returns the bootstrap file grpc-go's xDS resolver reads
// (the GRPC_XDS_BOOTSTRAP variable names it; set it before the client
// process starts). The channel to the control plane is plaintext.
func GRPCBootstrap(c BootstrapConfig) ([]byte, error) {
	if c.NodeID == "" {
		c.NodeID = "warren-grpc-client"
	}
	if _, _, err := hostPort(c.Server); err != nil {
		return nil, fmt.Errorf("xds: bootstrap server: %w", err)
	}
	type locality struct {
		Zone string `json:"zone,omitempty"`
	}
	doc := map[string]any{
		"xds_servers": []map[string]any{{
			"server_uri":      c.Server,
			"channel_creds":   []map[string]string{{"type": "insecure"}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]any{"id": c.NodeID, "cluster": c.Cluster, "locality": locality{Zone: c.Zone}},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("xds: bootstrap: %w", err)
	}
	return append(out, '\n'), nil
}
