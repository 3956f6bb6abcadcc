package edge_test

import (
	"context"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// slowDiscovery holds back the first listing of one service until release
// closes, as a registry slow to answer one watch does.
type slowDiscovery struct {
	registry.Discovery
	service string
	release chan struct{}
}

func (s *slowDiscovery) Instancer(ctx context.Context, service string) (sd.Instancer, error) {
	ins, err := s.Discovery.Instancer(ctx, service)
	if err != nil || service != s.service {
		return ins, err
	}
	return &heldInstancer{Instancer: ins, release: s.release}, nil
}

type heldInstancer struct {
	sd.Instancer
	release chan struct{}
}

// Register subscribes ch once release closes (from its own goroutine, as
// a backend's first read arrives later).
func (h *heldInstancer) Register(ch chan<- sd.Event) {
	go func() {
		<-h.release
		h.Instancer.Register(ch)
	}()
}
