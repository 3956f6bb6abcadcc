package balancer

import (
	"strings"
	"testing"
)

// Bad option values fail the constructor with an error naming the option
// (round 1 kept the default silently).
func TestNew_RefusesBadOptionValues(t *testing.T) {
	if _, err := NewConsistentHash(WithVirtualNodes(0)); err == nil || !strings.Contains(err.Error(), "WithVirtualNodes") {
		t.Errorf("WithVirtualNodes(0): %v", err)
	}
	if _, err := NewConsistentHash(WithKeyFunc(nil)); err == nil || !strings.Contains(err.Error(), "WithKeyFunc") {
		t.Errorf("WithKeyFunc(nil): %v", err)
	}
	if _, err := NewZoneAware("a", WithMinHealthy(0)); err == nil || !strings.Contains(err.Error(), "WithMinHealthy") {
		t.Errorf("WithMinHealthy(0): %v", err)
	}
	if _, err := NewZoneAware("a", WithGroupBalancer(nil)); err == nil || !strings.Contains(err.Error(), "WithGroupBalancer") {
		t.Errorf("WithGroupBalancer(nil): %v", err)
	}
}
