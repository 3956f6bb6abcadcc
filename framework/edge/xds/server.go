// Package xds is an xDS control plane over any Warren registry: it turns
// edge.Snapshots into Envoy's v3 resources (go-control-plane's snapshot
// cache) and serves them over ADS — LDS, RDS, CDS and EDS — to Envoy
// proxies and to proxyless gRPC clients (grpc-go's xds resolver, target
// xds:///NAME).
//
// Every service becomes a cluster of the same name whose endpoints are
// grouped into localities by zone, each locality weighted by the sum of
// its instances' weights and each endpoint by its instance's weight. gRPC
// clients get an API listener per service (named after it) routing to the
// cluster; Envoy nodes (user agent "envoy") get one HTTP listener whose
// routes send /NAME/… to cluster NAME. EnvoyBootstrap and GRPCBootstrap
// write the files that point a proxy or a client at the server.
package xds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	endpointservice "github.com/envoyproxy/go-control-plane/envoy/service/endpoint/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/go-kit/log"
	"github.com/go-kit/log/level"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/edge"
)

// Node groups: every node of a kind gets the same snapshot.
const (
	groupGRPC  = "grpc"
	groupEnvoy = "envoy"
)

// nodeGroup sorts nodes by what they are: Envoy says so in its user agent
// name; anything else is served as a proxyless gRPC client.
type nodeGroup struct{}

func (nodeGroup) ID(n *core.Node) string {
	if n.GetUserAgentName() == "envoy" {
		return groupEnvoy
	}
	return groupGRPC
}

// Server is an xDS control plane. Apply is its edge.Watcher apply
// function; Serve answers clients.
type Server struct {
	o     options
	cache cachev3.SnapshotCache
	grpc  *grpc.Server

	mu       sync.Mutex
	version  uint64
	last     string // key of the last set published (setKey)
	skipped  string // instances left out of the last set published, for the log
	stop     context.CancelFunc
	stopOnce sync.Once
}

type options struct {
	grpcSchemes  []string
	envoySchemes []string
	envoyListen  *core.Address
	logger       log.Logger
}

// Option adjusts a Server.
type Option func(*options) error

// ErrTLSScheme is returned (wrapped) for an endpoint scheme that needs TLS
// to the instance (grpcs, https): the clusters carry no TLS settings yet,
// so clients would speak plaintext to a TLS port.
var ErrTLSScheme = errors.New("needs TLS to the instances, which warren xds does not set up yet (docs/edge.md)")

// plaintext refuses schemes that need TLS.
func plaintext(what string, schemes []string) error {
	for _, s := range schemes {
		if s == "grpcs" || s == "https" {
			return fmt.Errorf("xds: %s scheme %q %w", what, s, ErrTLSScheme)
		}
	}
	return nil
}

// WithGRPCSchemes sets which endpoint of an instance gRPC clients are sent
// to, in order of preference (default: grpc). Instances with none of them
// are left out of the clusters gRPC clients see. A scheme that needs TLS
// (grpcs) is refused with ErrTLSScheme.
func WithGRPCSchemes(schemes ...string) Option {
	return func(o *options) error {
		if len(schemes) == 0 {
			return errors.New("xds: no gRPC scheme")
		}
		if err := plaintext("gRPC", schemes); err != nil {
			return err
		}
		o.grpcSchemes = schemes
		return nil
	}
}

// WithEnvoySchemes sets which endpoint of an instance Envoy proxies to,
// in order of preference (default: http; Envoy speaks HTTP/1.1 to it). A
// scheme that needs TLS (https) is refused with ErrTLSScheme.
func WithEnvoySchemes(schemes ...string) Option {
	return func(o *options) error {
		if len(schemes) == 0 {
			return errors.New("xds: no Envoy scheme")
		}
		if err := plaintext("Envoy", schemes); err != nil {
			return err
		}
		o.envoySchemes = schemes
		return nil
	}
}

// WithEnvoyListen sets the address of the HTTP listener served to Envoy
// (default 0.0.0.0:10000).
func WithEnvoyListen(hostport string) Option {
	return func(o *options) error {
		host, p, err := net.SplitHostPort(hostport)
		port, perr := strconv.Atoi(p)
		if err != nil || perr != nil || port < 1 || port > 65535 || host == "" {
			return fmt.Errorf("xds: Envoy listener %q: want host:port", hostport)
		}
		o.envoyListen = socketAddress(host, port)
		return nil
	}
}

// WithLogger sets the logger (default: discard).
func WithLogger(l log.Logger) Option {
	return func(o *options) error { o.logger = l; return nil }
}

// New returns a Server with no resources yet: clients that connect before
// the first Apply wait for it.
func New(opts ...Option) (*Server, error) {
	o := options{grpcSchemes: []string{"grpc"}, envoySchemes: []string{"http"}, envoyListen: socketAddress("0.0.0.0", 10000), logger: log.NewNopLogger()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	// ads=false: in ADS mode the cache answers only requests that name
	// every resource of a type, and a gRPC client asks only for the
	// listener of the service it calls.
	s := &Server{o: o, cache: cachev3.NewSnapshotCache(false, nodeGroup{}, cacheLogger{o.logger})}
	cb := serverv3.CallbackFuncs{
		StreamOpenFunc: func(_ context.Context, id int64, typ string) error {
			level.Debug(o.logger).Log("msg", "xds stream opened", "stream", id, "type", typ)
			return nil
		},
		StreamClosedFunc: func(id int64, n *core.Node) {
			level.Debug(o.logger).Log("msg", "xds stream closed", "stream", id, "node", n.GetId())
		},
	}
	// The server's streams end with Stop, which cancels this context.
	ctx, cancel := context.WithCancel(context.Background())
	xs := serverv3.NewServer(ctx, s.cache, cb)
	gs := grpc.NewServer()
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(gs, xs)
	endpointservice.RegisterEndpointDiscoveryServiceServer(gs, xs)
	clusterservice.RegisterClusterDiscoveryServiceServer(gs, xs)
	routeservice.RegisterRouteDiscoveryServiceServer(gs, xs)
	listenerservice.RegisterListenerDiscoveryServiceServer(gs, xs)
	s.grpc = gs
	s.stop = cancel
	return s, nil
}

// Apply is Sync without its result: the edge.Watcher apply function.
func (s *Server) Apply(ctx context.Context, snap edge.Snapshot) error {
	_, err := s.Sync(ctx, snap)
	return err
}

// Sync publishes snap to every client, a new version of every resource,
// and reports whether it did: a snapshot with the same services,
// instances and listing state as the last one published (only an error
// changed) is not published again.
func (s *Server) Sync(ctx context.Context, snap edge.Snapshot) (published bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := setKey(snap)
	if s.version > 0 && key == s.last {
		return false, nil
	}
	s.version++
	v := strconv.FormatUint(s.version, 10)
	for _, g := range []struct {
		name string
		g    group
	}{
		{groupGRPC, group{schemes: s.o.grpcSchemes}},
		{groupEnvoy, group{schemes: s.o.envoySchemes, envoy: true}},
	} {
		cs, err := cachev3.NewSnapshot(v, resources(snap, g.g, s.o.envoyListen))
		if err != nil {
			return false, fmt.Errorf("xds: snapshot: %w", err)
		}
		if err := s.cache.SetSnapshot(ctx, g.name, cs); err != nil {
			return false, fmt.Errorf("xds: set snapshot: %w", err)
		}
	}
	s.last = key
	var skipped []string
	for _, svc := range snap.Services {
		n := 0
		var noGRPC, noEnvoy []string
		for _, inst := range svc.Instances {
			if _, ok := inst.Endpoint(s.o.grpcSchemes...); ok {
				n++
			} else {
				noGRPC = append(noGRPC, inst.ID)
			}
			if _, ok := inst.Endpoint(s.o.envoySchemes...); !ok {
				noEnvoy = append(noEnvoy, inst.ID)
			}
		}
		if len(noGRPC) > 0 {
			skipped = append(skipped, svc.Name+" (gRPC clients): "+strings.Join(noGRPC, ","))
		}
		if len(noEnvoy) > 0 {
			skipped = append(skipped, svc.Name+" (Envoy): "+strings.Join(noEnvoy, ","))
		}
		if d := sameAddress(svc, s.o.grpcSchemes); len(d) > 0 {
			skipped = append(skipped, svc.Name+" (gRPC clients, the address of another instance): "+strings.Join(d, ","))
		}
		if d := sameAddress(svc, s.o.envoySchemes); len(d) > 0 {
			skipped = append(skipped, svc.Name+" (Envoy, the address of another instance): "+strings.Join(d, ","))
		}
		level.Debug(s.o.logger).Log("msg", "xds snapshot", "version", v, "service", svc.Name, "instances", len(svc.Instances), "grpc_endpoints", n)
	}
	// Once per change, not per snapshot: an instance registered with only
	// TLS endpoints (https, grpcs) stays left out until it changes.
	if sk := strings.Join(skipped, "; "); sk != s.skipped {
		if sk != "" {
			level.Warn(s.o.logger).Log("msg", "instances left out: no endpoint of the served schemes (TLS endpoints are not supported yet, docs/edge.md), or the address of another instance",
				"grpc_schemes", strings.Join(s.o.grpcSchemes, ","), "envoy_schemes", strings.Join(s.o.envoySchemes, ","), "skipped", sk)
		}
		s.skipped = sk
	}
	return true, nil
}

// setKey is what the resources of snap depend on.
func setKey(snap edge.Snapshot) string {
	var b strings.Builder
	for _, svc := range snap.Services {
		fmt.Fprintf(&b, "%s unlisted=%t\n", svc.Name, svc.Unlisted)
		for _, inst := range svc.Instances {
			b.WriteString(inst.String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// Serve answers xDS clients on lis until Stop; it returns nil then.
func (s *Server) Serve(lis net.Listener) error {
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("xds: serve: %w", err)
	}
	return nil
}

// Stop ends every stream and stops serving. It is idempotent. (Not a
// graceful stop: xDS streams never end on their own; clients reconnect.)
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		s.stop()
		s.grpc.Stop()
	})
}

// cacheLogger hands go-control-plane's log lines to a go-kit logger.
type cacheLogger struct{ l log.Logger }

func (c cacheLogger) Debugf(f string, a ...any) { level.Debug(c.l).Log("msg", fmt.Sprintf(f, a...)) }
func (c cacheLogger) Infof(f string, a ...any)  { level.Info(c.l).Log("msg", fmt.Sprintf(f, a...)) }
func (c cacheLogger) Warnf(f string, a ...any)  { level.Warn(c.l).Log("msg", fmt.Sprintf(f, a...)) }
func (c cacheLogger) Errorf(f string, a ...any) { level.Error(c.l).Log("msg", fmt.Sprintf(f, a...)) }
