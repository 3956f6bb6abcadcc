package consul

import (
	"strings"

	"github.com/warren-mesh/warren/framework/registry"
)

// httpEndpoint returns the base URL (scheme://host:port) an HTTP check
// probes: the instance's http:// or https:// endpoint.
func httpEndpoint(inst registry.Instance) (string, bool) {
	return inst.Endpoint("http", "https")
}

// grpcEndpoint returns the host:port of the instance's gRPC endpoint
// (grpc:// or grpcs://) and whether it speaks TLS.
func grpcEndpoint(inst registry.Instance) (hostPort string, useTLS, ok bool) {
	ep, ok := inst.Endpoint("grpc", "grpcs")
	if !ok {
		return "", false, false
	}
	scheme, hp, _ := strings.Cut(ep, "://")
	return hp, scheme == "grpcs", true
}
