package devmesh

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry"
)

// TestWithDefaults_AreTheDocumentedOnes pins Config's documented defaults
// that a bring-up cannot show quickly (the 60 s readiness bound), beside
// those TestStartStop_BringsUpEveryInstanceReadyAndStopsInOrder sees the
// instances get.
func TestWithDefaults_AreTheDocumentedOnes(t *testing.T) {
	c := withDefaults(Config{Root: "/mod", Backends: []Backend{{Registry: toyregistry.Backend()}}})
	if c.Registry != "toy" || c.Instances != 2 || !slices.Equal(c.Zones, []string{"zone-a", "zone-b"}) {
		t.Errorf("registry %q, %d instances, zones %q; want the first backend, 2, zone-a/zone-b", c.Registry, c.Instances, c.Zones)
	}
	if c.ReadyTimeout != 60*time.Second || c.Grace != time.Second || c.TTL != 5*time.Second {
		t.Errorf("ready timeout %s, grace %s, TTL %s; want 60s, 1s, 5s", c.ReadyTimeout, c.Grace, c.TTL)
	}
	if c.StateDir != filepath.Join("/mod", ".warren") || c.Out != os.Stdout {
		t.Errorf("state dir %q, out %v; want /mod/.warren and stdout", c.StateDir, c.Out)
	}
}
