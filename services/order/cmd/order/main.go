// Command order runs the order service. `order --help` lists every setting.
package main

import (
	"context"

	"github.com/warren-mesh/warren/framework/bootstrap"
	"github.com/warren-mesh/warren/framework/fallback"
	"github.com/warren-mesh/warren/framework/metrics"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/services/order"
	"github.com/warren-mesh/warren/services/user"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Registry backends this binary can use: --registry=NAME picks one,
	// the first is the default. Add or drop a backend here.
	registries := bootstrap.WithRegistries(etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend(), memory.Backend())
	// gRPC beside HTTP: --grpc-listen (default: --listen's host, port 9090).
	grpcSettings := grpcserver.DefaultSettings()
	var own settings
	bootstrap.Main(order.ServiceName, version, func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Transports, error) {
		// The user service is found through discovery. Readiness does not
		// depend on it: an order instance that cannot reach users still
		// serves reads, and failing readiness would cascade one outage
		// into two.
		// Closed on shutdown, and by bootstrap if the build fails below.
		newUsers := user.NewClient
		if own.UserGRPC {
			newUsers = user.NewGRPCClient // same balancer, retries, ejection
		}
		users, err := newUsers(ctx, d.Discovery, d.ClientOptions()...)
		if err != nil {
			return bootstrap.Transports{}, err
		}
		d.OnClose(users)

		var store order.Store = order.NewMemoryStore()
		if d.Config.DataDir != "" {
			s, err := order.NewDirStore(d.Config.DataDir, d.Logger)
			if err != nil {
				return bootstrap.Transports{}, err
			}
			store = s
		}
		// Reading orders names their users; when the user service cannot
		// answer (down, every instance overloaded), a fallback answers a
		// user without a name, so order lists orders without names
		// instead of failing. Create keeps the strict client: an order
		// for a user nobody could check is not placed. Each degraded
		// answer is a 200 to order's callers, so it is logged and counted
		// (warren_client_fallbacks_total) or the outage leaves no trace.
		traced := []fallback.Option{fallback.WithLogger(d.Logger)}
		if d.Metrics != nil {
			traced = append(traced, fallback.WithObserver(metrics.NewFallbacks(d.Metrics)))
		}
		names := users.WithFallbacks(user.Fallbacks{
			Get: func(_ context.Context, req user.GetRequest, _ error) (user.User, error) {
				return user.User{ID: req.ID}, nil
			},
		}, traced...)
		e := order.MakeEndpoints(order.New(users, store, order.WithNames(names)))
		return order.NewTransports(d, e, grpcSettings)
	}, registries, bootstrap.WithSettings(&grpcSettings), bootstrap.WithSettings(&own))
}

// settings are order's own flags.
type settings struct {
	UserGRPC bool `setting:"user-grpc" help:"call the user service over gRPC instead of HTTP"`
}
