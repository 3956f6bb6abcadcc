package dnssrv

import (
	"slices"
	"testing"
	"time"
)

// docs/kubernetes.md, DNS SRV discovery: the TTL is clamped to
// WithTTLBounds, "default 1 s – 30 s: a TTL of 0 still waits 1 s". The
// tests set their own bounds, so a changed default passed all of them.
func TestNewConfig_DocumentedTTLBounds(t *testing.T) {
	c, err := newConfig([]Option{WithServer("127.0.0.1:53")})
	if err != nil {
		t.Fatal(err)
	}
	if c.minTTL != time.Second || c.maxTTL != 30*time.Second {
		t.Fatalf("default TTL bounds [%s, %s]; documented [1s, 30s]", c.minTTL, c.maxTTL)
	}
	if !slices.Equal(c.servers, []string{"127.0.0.1:53"}) {
		t.Fatalf("servers %v", c.servers)
	}
}
