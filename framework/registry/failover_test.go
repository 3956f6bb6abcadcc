package registry_test

import (
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry"
)

// stub is an sd.Instancer the test drives.
type stub struct {
	*registry.Cache
	stopped bool
}

func (s *stub) Stop() { s.stopped = true }

func waitState(t *testing.T, f *registry.Failover, want []string, active int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := f.State()
		if slices.Equal(got.Instances, want) && f.Active() == active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %v (active %d), want %v (active %d)", got.Instances, f.Active(), want, active)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The local source wins while it has an instance; without one the next
// source's set is published; and back when local has one again.
func TestFailover_LocalFirstThenNextAndBack(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	f := registry.NewFailover(local, remote)
	waitState(t, f, []string{"l1"}, 0)

	local.Update(sd.Event{})
	waitState(t, f, []string{"r1"}, 1)

	local.Update(sd.Event{Instances: []string{"l2"}})
	waitState(t, f, []string{"l2"}, 0)

	f.Stop()
	f.Stop()
	if !local.stopped || !remote.stopped {
		t.Fatal("Stop did not stop the sources")
	}
}

// A local registry that cannot be read keeps its last good set (with the
// error): an outage of the registry is no reason to leave the region.
func TestFailover_LocalErrorWithLastGoodSetStaysLocal(t *testing.T) {
	local, remote := &stub{Cache: registry.NewCache()}, &stub{Cache: registry.NewCache()}
	local.Update(sd.Event{Instances: []string{"l1"}})
	remote.Update(sd.Event{Instances: []string{"r1"}})
	f := registry.NewFailover(local, remote)
	defer f.Stop()
	local.Update(sd.Event{Instances: []string{"l1"}, Err: errTest})
	waitErr(t, f)
	waitState(t, f, []string{"l1"}, 0)
	// Nothing anywhere: empty, with the errors.
	local.Update(sd.Event{Err: errTest})
	remote.Update(sd.Event{})
	waitState(t, f, nil, -1)
	waitErr(t, f)
}

func waitErr(t *testing.T, f *registry.Failover) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); f.State().Err == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sources' error was not passed on")
		}
	}
}

type testErr struct{}

func (testErr) Error() string { return "registry unreachable" }

var errTest = testErr{}
