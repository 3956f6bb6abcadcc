package nginx_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
)

// An instance registered under a host name nginx cannot resolve makes
// nginx -t refuse every file that names it. The changes that follow —
// here one instance leaving and another joining — must still reach
// nginx; they were all refused while that one record stayed, and nginx
// went on sending traffic to the instance that had left (audit e2, C3).
func TestSyncer_AnUnresolvableInstanceDoesNotHoldBackTheOthers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startNginx(t, "user")
	url := p.URL() + "/user/"
	a, b := backend(t, "a"), backend(t, "b")
	lost := registry.Instance{ID: "lost", Name: "user", Endpoints: []string{registry.EndpointURL("http", "no-such-host.invalid", 8080)}}
	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	set := func(insts ...registry.Instance) edge.Snapshot {
		return edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: insts}}}
	}
	if err := s.Apply(ctx, set(a)); err != nil {
		t.Fatal(err)
	}
	serves(t, url, "a")
	_ = s.Apply(ctx, set(a, lost)) // refused or applied without it: either way a serves
	serves(t, url, "a")

	// a leaves, b joins; lost stays registered.
	res, err := s.Sync(ctx, set(b, lost))
	if !errors.Is(err, nginx.ErrInvalidConfig) || !strings.Contains(err.Error(), "no-such-host.invalid") ||
		!res.Written || res.Unresolved != "user: lost" {
		t.Fatalf("b joins, a leaves: %+v, %v; want {b} written without lost, and nginx's error so the watcher retries the whole set", res, err)
	}
	serves(t, url, "b")
	reloads := s.Stats().Reloads
	// The watcher's retry of the same set: tested again, nothing reloaded.
	if res, err := s.Sync(ctx, set(b, lost)); !errors.Is(err, nginx.ErrInvalidConfig) || res.Written || s.Stats().Reloads != reloads {
		t.Fatalf("the retry: %+v, %v, %d reloads (was %d); want the same error and no reload", res, err, s.Stats().Reloads, reloads)
	}
	serves(t, url, "b")
}
