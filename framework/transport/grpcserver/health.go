package grpcserver

import (
	"context"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/transport"
)

// Health service names. ReadinessService reports the whole readiness,
// as /readyz does; "" (the server as a whole, what grpc-go's
// health-checking client and Kubernetes' gRPC probes ask by default) and
// the service's own names report it without transport.RegisteredCheck;
// LivenessService reports liveness.
const (
	ReadinessService = "readiness"
	LivenessService  = "liveness"
)

// SelfCheckKey is the metadata key of the self-check: a probe sends it on
// a Check of LivenessService and the answer's header echoes the nonce.
const SelfCheckKey = "x-warren-selfcheck"

// healthServer is grpc.health.v1 over the App's health sets. Unlike
// grpc-go's health.Server, whose statuses are set from outside, it runs
// the checks when asked, so NOT_SERVING shows the moment the App starts
// withdrawing (its "draining" check is never cached).
type healthServer struct {
	healthpb.UnimplementedHealthServer
	host  transport.Host
	every time.Duration
	stop  <-chan struct{} // closed when the server starts shutting down
	// names are the full names of the gRPC services the server serves
	// ("user.v1.UserService"): the names grpc.health.v1 clients and
	// probes ask by convention. Each reports serving readiness.
	names []string
}

// serviceNames lists the gRPC services a server serves, for the health
// service: every one but health itself and reflection, sorted.
func serviceNames(info map[string]grpc.ServiceInfo) []string {
	var names []string
	for name := range info {
		if name == healthpb.Health_ServiceDesc.ServiceName || strings.HasPrefix(name, "grpc.reflection.") {
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// set returns the health set a name reports and the checks of it the
// name leaves out of its status. "" and the service's names leave out the
// registration: it fails on every instance at once while the registry is
// unreachable, and counting it made every instance NOT_SERVING to
// grpc-go's health-checking client (every call failed) and would take
// every pod out for a Kubernetes gRPC probe (report j60b F3). A caller
// that found the instance through discovery does not need it; draining
// and the service's own checks still count.
func (h *healthServer) set(service string) (set *health.Set, exclude []string, ok bool) {
	servingExcludes := []string{transport.RegisteredCheck}
	switch service {
	case ReadinessService:
		return h.host.Ready, nil, true
	case LivenessService:
		return h.host.Live, nil, true
	case "", h.host.Service:
		return h.host.Ready, servingExcludes, true
	}
	if slices.Contains(h.names, service) {
		return h.host.Ready, servingExcludes, true
	}
	return nil, nil, false
}

// known lists the names Check, Watch and List answer for.
func (h *healthServer) known() []string {
	return append([]string{"", h.host.Service, ReadinessService, LivenessService}, h.names...)
}

func (h *healthServer) status(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	set, exclude, ok := h.set(service)
	if !ok {
		return 0, status.Errorf(codes.NotFound, "unknown service %q (ask one of %q)", service, h.known())
	}
	select {
	case <-h.stop:
		return healthpb.HealthCheckResponse_NOT_SERVING, nil
	default:
	}
	if set == nil || set.Run(ctx).Excluding(exclude...).OK() {
		return healthpb.HealthCheckResponse_SERVING, nil
	}
	return healthpb.HealthCheckResponse_NOT_SERVING, nil
}

func (h *healthServer) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(SelfCheckKey)) > 0 {
		_ = grpc.SetHeader(ctx, metadata.Pairs(SelfCheckKey, h.host.Nonce))
	}
	st, err := h.status(ctx, req.GetService())
	if err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

func (h *healthServer) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	for _, name := range h.known() {
		st, err := h.status(ctx, name)
		if err != nil {
			return nil, err
		}
		out.Statuses[name] = &healthpb.HealthCheckResponse{Status: st}
	}
	return out, nil
}

// Watch sends the status now and on every change, re-evaluated every
// interval; when the server starts shutting down it sends NOT_SERVING and
// ends the stream, so watchers learn at once and GracefulStop is not held
// up by streams that never end.
func (h *healthServer) Watch(req *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx := stream.Context()
	if _, _, ok := h.set(req.GetService()); !ok {
		// As grpc-go's server: an unknown service is SERVICE_UNKNOWN, not
		// an error, and the stream stays open (the service may appear).
		// Ending it made grpc-go's health-checking client retry, and its
		// round_robin hold every call until its deadline instead of
		// failing it (report j50c).
		if err := stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVICE_UNKNOWN}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.stop:
			return status.Error(codes.Unavailable, "server shutting down")
		}
	}
	t := time.NewTicker(h.every)
	defer t.Stop()
	last := healthpb.HealthCheckResponse_UNKNOWN
	for {
		st, err := h.status(ctx, req.GetService())
		if err != nil {
			return err
		}
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.stop:
			if last != healthpb.HealthCheckResponse_NOT_SERVING {
				_ = stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING})
			}
			return status.Error(codes.Unavailable, "server shutting down")
		case <-t.C:
		}
	}
}
