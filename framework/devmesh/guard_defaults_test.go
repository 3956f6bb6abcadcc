package devmesh

import (
	"testing"
	"time"
)

// docs/demo.md: "An instance that has not exited grace + 20 s after the
// SIGTERM is killed". The tests of the shared deadline shorten
// stopTimeout to keep their run short, so none of them would notice the
// documented 20 s changing; this one pins it.
func TestStopTimeout_IsTheDocumentedTwentySeconds(t *testing.T) {
	if stopTimeout != 20*time.Second {
		t.Fatalf("stopTimeout = %s; docs/demo.md promises grace + 20s before a hung instance is killed", stopTimeout)
	}
}
