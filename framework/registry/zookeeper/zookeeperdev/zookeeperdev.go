// Package zookeeperdev runs the ZooKeeper backend for the dev mesh
// (package devmesh): a real ZooKeeper (Debian's zookeeper package) on
// loopback, behind zktest's proxy so tests can cut the services off it.
//
//	devmesh.Start(ctx, devmesh.Config{Backends: []devmesh.Backend{zookeeperdev.Backend()}, ...})
//
// It is dev and test infrastructure: a service binary never links it.
package zookeeperdev

import (
	"context"
	"fmt"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/framework/registry/zookeeper/zktest"
)

// Backend returns the ZooKeeper backend with its dev server, for
// devmesh.Config.Backends.
func Backend() devmesh.Backend {
	return devmesh.Backend{Registry: zookeeper.Backend(), Start: start}
}

// Server is the mesh's ZooKeeper. Tests restart it (Stop, Start) or cut
// every client off it (Cut, Heal) under running services.
type Server struct {
	*zktest.Server
}

var _ devmesh.Server = (*Server)(nil)

// start ignores dir: zktest keeps the data in a directory of its own,
// removed by Close.
func start(ctx context.Context, _ string) (devmesh.Server, error) {
	s, err := zktest.Start(ctx)
	if err != nil {
		return nil, fmt.Errorf("zookeeper: %w", err)
	}
	return &Server{Server: s}, nil
}

// Flags implements devmesh.Server: the session timeout is the TTL, how
// long a dead instance stays visible.
func (s *Server) Flags(ttl time.Duration) map[string]string {
	return map[string]string{
		"zookeeper-servers":         s.Addr(),
		"zookeeper-session-timeout": ttl.String(),
	}
}

// String implements devmesh.Server.
func (s *Server) String() string { return "zookeeper listening on " + s.Addr() }
