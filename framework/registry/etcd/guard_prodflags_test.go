package etcd

import (
	"flag"
	"slices"
	"testing"
	"time"
)

// docs/production.md, "Lease TTL, election timeout, request timeout":
// Warren's defaults are a 10 s lease TTL (--etcd-ttl) and a 5 s request
// timeout (--etcd-request-timeout). TestDefaults_AreTheDocumentedOnes
// checks the options a Registry gets without any; a service gets its
// registry from these flags, whose defaults no test read: halving either
// in bindFlags passed. This reads them as a service parsing no flag gets
// them, and as --help shows them.
func TestFlags_DefaultsAreTheDocumentedOnes(t *testing.T) {
	fs := flag.NewFlagSet("svc", flag.ContinueOnError)
	s, ok := bindFlags(fs).(*settings)
	if !ok {
		t.Fatalf("bindFlags returned %T, want *settings", s)
	}
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		flag      string
		got, want time.Duration
	}{
		{"etcd-ttl", s.ttl, 10 * time.Second},
		{"etcd-request-timeout", s.reqTimeout, 5 * time.Second},
		{"etcd-dial-timeout", s.dialTimeout, 5 * time.Second},
	} {
		if d.got != d.want {
			t.Errorf("--%s defaults to %s, docs say %s", d.flag, d.got, d.want)
		}
		if f := fs.Lookup(d.flag); f == nil || f.DefValue != d.want.String() {
			t.Errorf("--%s: --help shows %v, want %s", d.flag, f, d.want)
		}
	}
	if s.prefix != "warren" || !slices.Equal(s.endpoints, []string{"127.0.0.1:2379"}) {
		t.Errorf("--etcd-prefix %q, --etcd-endpoints %q; want warren and 127.0.0.1:2379", s.prefix, s.endpoints)
	}
}
