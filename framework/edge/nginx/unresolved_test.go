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

// nginx cannot parse an IPv6 address with a zone ("[fe80::1%eth0]:80":
// "invalid IPv6 address in upstream"), which the registry takes. Such an
// instance is left out like one without an http endpoint; written into
// the file, it made nginx -t refuse every set while it stayed registered
// (audit e2, C4).
func TestSyncer_AnIPv6AddressWithAZoneIsLeftOutNotRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := startNginx(t, "user")
	url := p.URL() + "/user/"
	a, b := backend(t, "a"), backend(t, "b")
	zoned := registry.Instance{ID: "zoned", Name: "user", Endpoints: []string{"http://[fe80::1%eth0]:8080"}}
	if _, _, _, err := registry.ParseEndpoint(zoned.Endpoints[0]); err != nil {
		t.Fatalf("the registry no longer takes a zone: %v (this test can go)", err)
	}
	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	s, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		insts []registry.Instance
		want  string
	}{{[]registry.Instance{a, zoned}, "a"}, {[]registry.Instance{b, zoned}, "b"}} {
		res, err := s.Sync(ctx, edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: c.insts}}})
		if err != nil || res.Skipped != "user: zoned" {
			t.Fatalf("%s with the zoned instance: %+v, %v; want it applied, zoned left out", c.want, res, err)
		}
		serves(t, url, c.want)
	}
}
