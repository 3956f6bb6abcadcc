package registry_test

import (
	"testing"

	"github.com/warren-mesh/warren/framework/registry"
)

// OnStop runs its funcs once, after Stop stopped the sources, and a func
// given after Stop at once.
func TestFailover_OnStop(t *testing.T) {
	src := &stub{Cache: registry.NewCache()}
	f := registry.NewFailover(src)
	calls := 0
	f.OnStop(func() {
		if !src.stopped {
			t.Error("OnStop func ran before the source was stopped")
		}
		calls++
	})
	f.Stop()
	f.Stop()
	if calls != 1 {
		t.Fatalf("OnStop func ran %d times, want 1", calls)
	}
	late := false
	f.OnStop(func() { late = true })
	if !late {
		t.Error("OnStop after Stop did not run its func at once")
	}
}
