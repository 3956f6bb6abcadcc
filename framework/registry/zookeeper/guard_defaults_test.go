package zookeeper

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The defaults docs/registry-zookeeper.md states, for the command line
// (its flag table: --zookeeper-servers 127.0.0.1:2181, --zookeeper-root
// /warren, --zookeeper-session-timeout 10s) and for New (close timeout
// 3 s, initial wait 3 s, backoff 200 ms to 5 s). The tests pass their own
// values everywhere, so without this a changed default went unnoticed.
func TestDefaults_AreTheDocumentedOnes(t *testing.T) {
	s := parseBackend(t).(*settings)
	if got, want := fmt.Sprintf("%v %s %s", s.servers, s.root, s.sessionTimeout), "[127.0.0.1:2181] /warren 10s"; got != want {
		t.Errorf("flag defaults (servers, root, session timeout) = %s; documented %s", got, want)
	}
	if s.username != "" || s.password != "" || s.ca != "" || s.cert != "" || s.key != "" {
		t.Errorf("flag defaults: %v; documented: no auth, no TLS", s)
	}

	c := defaultConfig()
	if !slices.Equal(c.servers, []string{"127.0.0.1:2181"}) || c.root != "/warren" {
		t.Errorf("New's servers and root = %v %s; documented [127.0.0.1:2181] /warren", c.servers, c.root)
	}
	got := [5]time.Duration{c.sessionTimeout, c.closeTimeout, c.initialWait, c.backoffMin, c.backoffMax}
	want := [5]time.Duration{10 * time.Second, 3 * time.Second, 3 * time.Second, 200 * time.Millisecond, 5 * time.Second}
	if got != want {
		t.Errorf("New's session timeout, close timeout, initial wait, backoff min and max = %v; documented %v", got, want)
	}
	if c.acl != nil || c.tls != nil || c.username != "" {
		t.Errorf("New's default: ACL %v, TLS %v, user %q; documented world ACL, plaintext, no auth", c.acl, c.tls, c.username)
	}
}
