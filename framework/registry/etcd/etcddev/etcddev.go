// Package etcddev runs the etcd backend for the dev mesh (package devmesh):
// an embedded etcd on loopback, so `make up` needs nothing but Go.
//
//	devmesh.Start(ctx, devmesh.Config{Backends: []devmesh.Backend{etcddev.Backend()}, ...})
//
// It is dev and test infrastructure: a service binary never links it.
package etcddev

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// Backend returns the etcd backend with its dev server, for
// devmesh.Config.Backends.
func Backend() devmesh.Backend {
	return devmesh.Backend{Registry: etcd.Backend(), Start: start}
}

// Server is the mesh's embedded etcd. Tests stop and start it (Stop,
// Start) under running services to play an etcd outage.
type Server struct {
	*embedetcd.Server
}

var _ devmesh.Server = (*Server)(nil)

func start(ctx context.Context, dir string) (devmesh.Server, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	srv, err := embedetcd.Start(embedetcd.WithDir(dir))
	if err != nil {
		return nil, fmt.Errorf("embedded etcd: %w", err)
	}
	return &Server{Server: srv}, nil
}

// Flags implements devmesh.Server.
func (s *Server) Flags(ttl time.Duration) map[string]string {
	return map[string]string{
		"etcd-endpoints": strings.Join(s.Endpoints(), ","),
		"etcd-ttl":       ttl.String(),
	}
}

// String implements devmesh.Server.
func (s *Server) String() string {
	return "etcd (embedded) listening on " + strings.Join(s.Endpoints(), ",")
}
