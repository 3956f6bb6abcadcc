package devmesh

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

// ready asks the instance whether it is ready and says what to show when
// it is not. An instance with an HTTP endpoint is asked GET /readyz; one
// serving gRPC only has no /readyz, and is asked grpc.health.v1's
// "readiness" service, which reports what /readyz does, so a gRPC-only
// service comes up under `make up` too.
func (m *Mesh) ready(ctx context.Context, c *http.Client, in *Instance) (bool, string) {
	if in.Registered.ID == "" {
		return false, "not listed"
	}
	if u := httpURL(in.Registered); u != "" {
		switch st := httpReadyz(ctx, c, u); st {
		case http.StatusOK:
			return true, ""
		case 0:
			return false, "unreachable"
		default:
			return false, fmt.Sprintf("%d", st)
		}
	}
	if ep, ok := in.Registered.Endpoint("grpc", "grpcs"); ok {
		return grpcReady(ctx, c.Timeout, ep)
	}
	return false, "no http or grpc endpoint"
}

// httpReadyz is the status of GET base/readyz, 0 when there is no answer.
func httpReadyz(ctx context.Context, c *http.Client, base string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// grpcReady asks the health service at ep (grpc:// or grpcs://, verified
// as an https /readyz would be) for the instance's whole readiness.
func grpcReady(ctx context.Context, timeout time.Duration, ep string) (bool, string) {
	scheme, hostPort, _ := strings.Cut(ep, "://")
	creds := insecure.NewCredentials()
	if scheme == "grpcs" {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(hostPort, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, "unreachable"
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: grpcserver.ReadinessService})
	if err != nil {
		return false, "unreachable"
	}
	return resp.GetStatus() == healthpb.HealthCheckResponse_SERVING, resp.GetStatus().String()
}
