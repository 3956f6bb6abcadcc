package meshup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/internal/meshview"
)

// startPage serves the mesh page (docs/mesh-page.md) of m on addr, or on a
// free loopback port when addr is taken, until ctx ends; stop waits for
// it. It reads discovery through the launcher's own registry client.
func startPage(ctx context.Context, m *devmesh.Mesh, registryName, addr string) (url string, stop func(), err error) {
	v, err := meshview.New(m.Discovery(), meshview.WithRegistryName(registryName), meshview.WithServices(m.Services()...))
	if err != nil {
		return "", nil, err
	}
	// The page answers IP addresses and localhost; a name given as the
	// address (MESH_PAGE) too, and no other (DNS rebinding).
	host, _, _ := net.SplitHostPort(addr)
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // another mesh has the usual port
	}
	if err != nil {
		return "", nil, fmt.Errorf("mesh page: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by run: ends with ctx
		defer wg.Done()
		_ = meshview.Serve(ctx, ln, v, meshview.WithAllowedHosts(host))
	}()
	return "http://" + ln.Addr().String() + "/", wg.Wait, nil
}
