package etcd

import (
	"strings"
	"testing"
	"time"
)

// A TTL under 1 s is refused at New (docs/registry-etcd.md, Options:
// WithTTL): etcd counts leases in whole seconds, so 500 ms would silently
// become a lease of 1 s or be refused by the server later.
func TestGuard_TTLUnderOneSecondIsRefused(t *testing.T) {
	for ttl, ok := range map[time.Duration]bool{999 * time.Millisecond: false, 0: false, time.Second: true} {
		c := defaultConfig()
		c.endpoints = []string{"127.0.0.1:2379"}
		WithTTL(ttl)(&c)
		err := c.validate()
		if ok != (err == nil) || (err != nil && !strings.Contains(err.Error(), "TTL")) {
			t.Errorf("WithTTL(%s): validate = %v; want refused %v with a word on the TTL", ttl, err, !ok)
		}
	}
}
