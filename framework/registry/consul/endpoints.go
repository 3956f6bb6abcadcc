package consul

import "github.com/warren-mesh/warren/framework/registry"

// httpEndpoint returns the base URL (scheme://host:port) an HTTP check
// probes.
func httpEndpoint(inst registry.Instance) (string, bool) {
	return inst.BaseURL(), true
}

// grpcEndpoint returns the host:port of the instance's gRPC endpoint and
// whether it speaks TLS. Instances carry no gRPC endpoint until the gRPC
// transport publishes one (grpc:// or grpcs://), so for now there is none.
func grpcEndpoint(registry.Instance) (hostPort string, useTLS, ok bool) {
	return "", false, false
}
