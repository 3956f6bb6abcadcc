package consul

import (
	"context"
	"testing"
	"time"
)

// The defaults docs/registry-consul.md states (Options, Checks), as a
// Registry made without options holds them; the heartbeat of the default
// TTL check goes every TTL/3, so the check never turns critical between
// two beats.
func TestDefaults_AreTheDocumentedOnes(t *testing.T) {
	r, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := r.cfg
	ttl, ok := c.ttlCheck()
	if !ok || len(c.checks) != 1 {
		t.Fatalf("default checks %+v, want one TTL check", c.checks)
	}
	for _, d := range []struct {
		name      string
		got, want time.Duration
	}{
		{"check TTL", ttl.TTL, 10 * time.Second},
		{"heartbeat (TTL/3)", r.beatInterval(), 10 * time.Second / 3},
		{"deregister critical after", c.deregCritical, time.Minute},
		{"deregister timeout", c.deregTimeout, 5 * time.Second},
		{"request timeout", c.requestTimeout, 5 * time.Second},
		{"wait time", c.waitTime, time.Minute},
		{"backoff min", c.backoffMin, 100 * time.Millisecond},
		{"backoff max", c.backoffMax, 10 * time.Second},
		{"HTTP check interval", Check{Kind: CheckHTTP}.withDefaults().Interval, 10 * time.Second},
		{"HTTP check timeout", Check{Kind: CheckHTTP}.withDefaults().Timeout, 2 * time.Second},
	} {
		if d.got != d.want {
			t.Errorf("default %s = %s, docs say %s", d.name, d.got, d.want)
		}
	}
	if c.queryRate != 10 || c.queryBurst != 5 {
		t.Errorf("default query rate %v/s burst %d, docs say 10/s burst 5", c.queryRate, c.queryBurst)
	}
	if got := (Check{Kind: CheckHTTP}).withDefaults().Path; got != "/healthz" {
		t.Errorf("default HTTP check path %q, docs say /healthz", got)
	}
	if len(c.addresses) != 1 || c.addresses[0] != "127.0.0.1:8500" {
		t.Errorf("default agent address %q, docs say 127.0.0.1:8500", c.addresses)
	}
}
