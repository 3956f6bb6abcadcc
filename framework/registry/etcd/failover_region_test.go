package etcd

import (
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// With WithFailoverPrefixes the Instancer serves the own region's
// instances while it has any, and the failover region's (read under its
// own prefix) while the own one has none (docs/production.md, several
// regions).
func TestInstancer_FailsOverToAnotherRegionsPrefixAndBack(t *testing.T) {
	prefix := testPrefix(t)
	eu, us := prefix+"-eu", prefix+"-us"
	euReg, _ := newTestRegistry(t, shared, eu)
	usReg, _ := newTestRegistry(t, shared, us)
	caller, _ := newTestRegistry(t, shared, eu, WithFailoverPrefixes(us))
	ctx := testCtx(t)
	local, remote := testInstance(8080), testInstance(9090)

	if err := usReg.Register(ctx, remote); err != nil {
		t.Fatal(err)
	}
	in, err := caller.Instancer(ctx, local.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	only := func(id string) func(ev sd.Event) bool {
		return func(ev sd.Event) bool {
			ids := registrytest.IDs(ev)
			return ev.Err == nil && len(ids) == 1 && ids[0] == id
		}
	}
	rec.WaitFor(t, 20*time.Second, "the other region's instance while the own region has none", only(remote.ID))

	if err := euReg.Register(ctx, local); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 20*time.Second, "the own region's instance once it has one", only(local.ID))

	if err := euReg.Deregister(ctx, local); err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, 20*time.Second, "the other region's again", only(remote.ID))
}
