package registry_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// spillInst is an instance of "user" on port.
func spillInst(port int) registry.Instance {
	return registry.Instance{ID: registry.DefaultID("user", "127.0.0.1", port), Name: "user",
		Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", port)}}
}

func strs(insts ...registry.Instance) []string {
	out := make([]string, 0, len(insts))
	for _, in := range insts {
		out = append(out, in.String())
	}
	slices.Sort(out)
	return out
}

// spillRegion is one region's memory registry and an instancer of user.
func spillRegion(t *testing.T, insts ...registry.Instance) (*memory.Registry, sd.Instancer) {
	t.Helper()
	reg := memory.New()
	t.Cleanup(func() { reg.Close() })
	for _, in := range insts {
		if err := reg.Register(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	src, err := reg.Instancer(context.Background(), "user")
	if err != nil {
		t.Fatal(err)
	}
	return reg, src
}

func waitSpill(t *testing.T, f *registry.Failover, want []string, active, to int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.State()
		if slices.Equal(got.Instances, want) && f.Active() == active && f.SpillingTo() == to {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v (active %d, spilling to %d), want %v (active %d, spilling to %d)",
				got.Instances, f.Active(), f.SpillingTo(), want, active, to)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Spill publishes the local set plus the next region's, and the plain
// local set again when turned off; a new local instance or the local
// region emptying ends it by itself.
func TestFailover_SpillAddsTheNextRegionUntilOffOrLocalChanges(t *testing.T) {
	l1, l2, l3, r1 := spillInst(1001), spillInst(1002), spillInst(1003), spillInst(2001)
	local, lsrc := spillRegion(t, l1, l2)
	_, rsrc := spillRegion(t, r1)
	f := registry.NewFailover(lsrc, rsrc)
	defer f.Stop()
	waitSpill(t, f, strs(l1, l2), 0, -1)

	if !f.Spill(true) || !f.Spilling() {
		t.Fatal("Spill(true) not held with a next region that has an instance")
	}
	waitSpill(t, f, strs(l1, l2, r1), 0, 1)
	if !f.Spill(true) { // idempotent
		t.Fatal("a second Spill(true) not held")
	}
	if f.Spill(false) || f.Spilling() {
		t.Fatal("Spill(false) left the request in force")
	}
	waitSpill(t, f, strs(l1, l2), 0, -1)

	// A local instance that was not listed at Spill(true) ends it.
	f.Spill(true)
	waitSpill(t, f, strs(l1, l2, r1), 0, 1)
	if err := local.Register(context.Background(), l3); err != nil {
		t.Fatal(err)
	}
	waitSpill(t, f, strs(l1, l2, l3), 0, -1)
	if f.Spilling() {
		t.Fatal("the request outlived a new local instance")
	}

	// One listed instance leaving keeps the spill; the local region
	// emptying (the records expired) is a plain failover and ends it.
	f.Spill(true)
	waitSpill(t, f, strs(l1, l2, l3, r1), 0, 1)
	if err := local.Deregister(context.Background(), l3); err != nil {
		t.Fatal(err)
	}
	waitSpill(t, f, strs(l1, l2, r1), 0, 1)
	for _, in := range []registry.Instance{l1, l2} {
		if err := local.Deregister(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	waitSpill(t, f, strs(r1), 1, -1)
	if f.Spilling() {
		t.Fatal("the request outlived the switch of the active region")
	}
	// Back home: plain local set, no spill.
	if err := local.Register(context.Background(), l1); err != nil {
		t.Fatal(err)
	}
	waitSpill(t, f, strs(l1), 0, -1)

	f.Stop()
	f.Stop()
	if f.Spill(true) {
		t.Fatal("Spill(true) held after Stop")
	}
}

// Nothing to spill to: a Failover of one source refuses; one whose next
// region is empty holds the request and spills once that region has an
// instance.
func TestFailover_SpillNeedsAnotherSource(t *testing.T) {
	l1, r1 := spillInst(1001), spillInst(2001)
	_, only := spillRegion(t, l1)
	one := registry.NewFailover(only)
	defer one.Stop()
	waitSpill(t, one, strs(l1), 0, -1)
	if one.Spill(true) || one.Spilling() {
		t.Fatal("a Failover of one source took Spill(true)")
	}
	waitSpill(t, one, strs(l1), 0, -1)

	_, lsrc := spillRegion(t, l1)
	remote, rsrc := spillRegion(t)
	f := registry.NewFailover(lsrc, rsrc)
	defer f.Stop()
	waitSpill(t, f, strs(l1), 0, -1)
	if !f.Spill(true) {
		t.Fatal("Spill(true) not held while the next region is empty")
	}
	waitSpill(t, f, strs(l1), 0, -1)
	if err := remote.Register(context.Background(), r1); err != nil {
		t.Fatal(err)
	}
	waitSpill(t, f, strs(l1, r1), 0, 1)
}

// The spill and its end are logged, and the source spilled to reads 1 in
// warren_registry_failover_source beside the local one while it lasts.
func TestReportFailover_LogsAndReportsTheSpill(t *testing.T) {
	l1, r1 := spillInst(1001), spillInst(2001)
	_, lsrc := spillRegion(t, l1)
	_, rsrc := spillRegion(t, r1)
	f := registry.NewFailover(lsrc, rsrc)
	defer f.Stop()
	logs, obs, waitFor := reportFailover(t, f)
	waitFor("dca reported serving", func() bool { return obs.is("user/dca") && !obs.is("user/dcb") })
	f.Spill(true)
	waitFor("the spill logged and reported", func() bool {
		return strings.Contains(logs.String(), `msg="discovery spills to dcb: callers found every instance in dca failing; they stay listed and are probed" service=user datacenter=dcb from=dca`) &&
			obs.is("user/dca") && obs.is("user/dcb")
	})
	f.Spill(false)
	waitFor("the end logged and reported", func() bool {
		return strings.Contains(logs.String(), `msg="discovery stops spilling: callers use dca alone" service=user datacenter=dca from=dcb`) &&
			obs.is("user/dca") && !obs.is("user/dcb")
	})
}

// A local instance that left during a spill and is listed again (a
// restart that kept its record's address) is an instance the local
// source did not list a moment ago: it ends the spill like a new one.
func TestFailover_SpillEndsWhenALocalInstanceThatLeftIsBack(t *testing.T) {
	l1, l2, r1 := spillInst(1001), spillInst(1002), spillInst(2001)
	local, lsrc := spillRegion(t, l1, l2)
	_, rsrc := spillRegion(t, r1)
	f := registry.NewFailover(lsrc, rsrc)
	defer f.Stop()
	waitSpill(t, f, strs(l1, l2), 0, -1)
	if !f.Spill(true) {
		t.Fatal("Spill(true) not held")
	}
	waitSpill(t, f, strs(l1, l2, r1), 0, 1)
	if err := local.Deregister(context.Background(), l1); err != nil {
		t.Fatal(err)
	}
	waitSpill(t, f, strs(l2, r1), 0, 1)
	if err := local.Register(context.Background(), l1); err != nil {
		t.Fatal(err)
	}
	waitSpill(t, f, strs(l1, l2), 0, -1)
	if f.Spilling() {
		t.Fatal("the request outlived a local instance listed again")
	}
}
