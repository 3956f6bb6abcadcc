package nginx_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/registry"
)

// A placeholder block is no previous set, whichever start wrote it: a
// run that ended before the registry ever answered leaves Start's
// placeholders in the file, and the next start took them for the last
// good sets of those services. Its Syncer then kept the whole file for
// them while they were unlisted, holding back the services the registry
// did list: 502 for a service with instances, or the set of two runs
// ago (audit e2, C5).
func TestStart_APlaceholderLeftByAnEarlierStartIsNoPreviousSet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	down := errors.New("registry down")
	start := func(dir string, services ...string) *nginx.Process {
		t.Helper()
		p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: services})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Stop() })
		return p
	}
	sync := func(p *nginx.Process, snap edge.Snapshot) nginx.Result {
		t.Helper()
		s, err := nginx.NewSyncer(p.Upstreams(), r, p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Sync(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("first start never listed", func(t *testing.T) {
		dir := t.TempDir()
		start(dir, "user", "order").Stop() // the registry never answered
		p := start(dir, "user", "order")
		if sf := p.StartFile(); len(sf.Previous) != 0 || !slices.Equal(sf.Placeholders, []string{"user", "order"}) {
			t.Errorf("StartFile %+v; want no previous set, placeholders for both", sf)
		}
		res := sync(p, edge.Snapshot{Services: []edge.Service{
			{Name: "user", Unlisted: true, Err: down},
			{Name: "order", Instances: []registry.Instance{backend(t, "o")}},
		}})
		if res.Kept || !res.Written {
			t.Fatalf("Sync: %+v; want order's set written (user has nothing to keep)", res)
		}
		serves(t, p.URL()+"/order/", "o")
	})

	t.Run("service added by the run before", func(t *testing.T) {
		dir := t.TempDir()
		p := start(dir, "user")
		sync(p, edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: []registry.Instance{backend(t, "a")}}}})
		p.Stop()
		start(dir, "user", "order").Stop() // order gets a placeholder; the registry never answered
		p = start(dir, "user", "order")
		if sf := p.StartFile(); !slices.Equal(sf.Previous, []string{"user"}) || !slices.Equal(sf.Placeholders, []string{"order"}) {
			t.Errorf("StartFile %+v; want user's set kept, a placeholder for order", sf)
		}
		res := sync(p, edge.Snapshot{Services: []edge.Service{
			{Name: "user", Instances: []registry.Instance{backend(t, "b")}},
			{Name: "order", Unlisted: true, Err: down},
		}})
		if res.Kept || !res.Written {
			t.Fatalf("Sync: %+v; want user's current set written (order has nothing to keep)", res)
		}
		serves(t, p.URL()+"/user/", "b")
	})
}
