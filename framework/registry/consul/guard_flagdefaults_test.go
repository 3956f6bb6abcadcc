package consul

import (
	"flag"
	"slices"
	"testing"
	"time"
)

// docs/registry-consul.md, the flag table: --consul-check ttl,
// --consul-ttl 10s, --consul-check-interval 10s, --consul-check-timeout
// 2s, --consul-deregister-critical-after 1m, --consul-check-tls-*
// unset, and the agent at 127.0.0.1:8500. TestDefaults_AreTheDocumentedOnes
// reads a Registry made without options; a service gets its registry from
// these flags, whose defaults no test read: changing any of them in
// bindFlags passed. This reads them as a service parsing no flag gets them,
// the checks they make, and what --help shows.
func TestFlags_DefaultsAreTheDocumentedOnes(t *testing.T) {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	s, ok := bindFlags(fs).(*settings)
	if !ok {
		t.Fatalf("bindFlags returned %T, want *settings", s)
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("the defaults are refused: %v", err)
	}
	for _, d := range []struct {
		flag      string
		got, want time.Duration
	}{
		{"consul-ttl", s.ttl, 10 * time.Second},
		{"consul-check-interval", s.interval, 10 * time.Second},
		{"consul-check-timeout", s.timeout, 2 * time.Second},
		{"consul-deregister-critical-after", s.deregAfter, time.Minute},
	} {
		if d.got != d.want {
			t.Errorf("--%s defaults to %s, docs say %s", d.flag, d.got, d.want)
		}
		if f := fs.Lookup(d.flag); f == nil || f.DefValue != d.want.String() {
			t.Errorf("--%s: --help shows %v, want %s", d.flag, f, d.want)
		}
	}
	if s.check != "ttl" || fs.Lookup("consul-check").DefValue != "ttl" {
		t.Errorf("--consul-check defaults to %q, docs say ttl", s.check)
	}
	if !slices.Equal(s.addrs, []string{"127.0.0.1:8500"}) {
		t.Errorf("--consul-addr defaults to %q, docs say 127.0.0.1:8500", s.addrs)
	}
	if s.checkTLS != (CheckTLS{}) || s.allowStale || s.datacenter != "" || s.token != "" || len(s.failover) != 0 {
		t.Errorf("check TLS %+v, allow stale %t, datacenter %q, failover %q; want all unset by default", s.checkTLS, s.allowStale, s.datacenter, s.failover)
	}
	// What the defaults register: one TTL check of 10 s, nothing the
	// agent would have to reach the instance for.
	checks, err := s.checks()
	if err != nil {
		t.Fatal(err)
	}
	if len(checks) != 1 || checks[0].Kind != CheckTTL || checks[0].TTL != 10*time.Second {
		t.Errorf("default checks %+v, want one TTL check of 10s", checks)
	}
}
