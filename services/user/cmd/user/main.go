// Command user runs the user service. `user --help` lists every setting.
package main

import (
	"context"

	"github.com/warren-mesh/warren/framework/bootstrap"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/services/user"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Registry backends this binary can use: --registry=NAME picks one,
	// the first is the default. Add or drop a backend here.
	registries := bootstrap.WithRegistries(etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend(), memory.Backend())
	// gRPC beside HTTP: --grpc-listen (default: --listen's host, port 9090); the one
	// registration publishes both endpoints.
	grpcSettings := grpcserver.DefaultSettings()
	bootstrap.Main(user.ServiceName, version, func(ctx context.Context, d *bootstrap.Deps) (bootstrap.Transports, error) {
		var store user.Store = user.NewMemoryStore()
		if d.Config.DataDir != "" {
			s, err := user.NewDirStore(d.Config.DataDir, d.Logger)
			if err != nil {
				return bootstrap.Transports{}, err
			}
			store = s
		}
		e := user.MakeEndpoints(user.New(store))
		return user.NewTransports(d, e, grpcSettings)
	}, registries, bootstrap.WithSettings(&grpcSettings))
}
