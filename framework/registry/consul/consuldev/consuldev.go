// Package consuldev runs the Consul backend for the dev mesh (package
// devmesh): a real Consul agent in -dev mode on loopback, from bin/consul
// (see consultest for how the binary is found).
//
//	devmesh.Start(ctx, devmesh.Config{Backends: []devmesh.Backend{consuldev.Backend()}, ...})
//
// It is dev and test infrastructure: a service binary never links it.
package consuldev

import (
	"context"
	"fmt"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/consul/consultest"
)

// Backend returns the Consul backend with its dev server, for
// devmesh.Config.Backends.
func Backend() devmesh.Backend {
	return devmesh.Backend{Registry: consul.Backend(), Start: start}
}

// Server is the mesh's Consul agent. Tests restart it (Stop, Start) under
// running services to play an agent restart.
type Server struct {
	*consultest.Agent
}

var _ devmesh.Server = (*Server)(nil)

// start ignores dir: a -dev agent keeps its state in memory.
func start(ctx context.Context, _ string) (devmesh.Server, error) {
	a, err := consultest.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("consul agent: %w", err)
	}
	return &Server{Agent: a}, nil
}

// Flags implements devmesh.Server.
func (s *Server) Flags(ttl time.Duration) map[string]string {
	return map[string]string{
		"consul-addr": s.Addr(),
		"consul-ttl":  ttl.String(),
	}
}

// String implements devmesh.Server.
func (s *Server) String() string { return "consul agent (-dev) listening on " + s.Addr() }
