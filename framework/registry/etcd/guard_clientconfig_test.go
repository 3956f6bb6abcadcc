package etcd

import (
	"testing"
	"time"
)

// The client the Registry makes pings its connection (WithDialKeepAlive,
// 10 s and 3 s by default; docs/registry-etcd.md, "network half-open"):
// without the keepalive a half-open connection is never noticed, the
// instancers' watch waits on it and no registration is rewritten. The
// defaults are pinned in TestDefaults_AreTheDocumentedOnes; this pins
// that they, and a value given, reach the client's configuration.
func TestGuard_KeepaliveReachesTheClient(t *testing.T) {
	for _, tc := range []struct {
		name            string
		opts            []Option
		every, deadline time.Duration
	}{
		{"default", nil, 10 * time.Second, 3 * time.Second},
		{"given", []Option{WithDialKeepAlive(12*time.Second, 4*time.Second)}, 12 * time.Second, 4 * time.Second},
	} {
		c := defaultConfig()
		for _, o := range tc.opts {
			o(&c)
		}
		cc, err := c.clientConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cc.DialKeepAliveTime != tc.every || cc.DialKeepAliveTimeout != tc.deadline {
			t.Errorf("%s: client keepalive %s/%s, want %s/%s", tc.name, cc.DialKeepAliveTime, cc.DialKeepAliveTimeout, tc.every, tc.deadline)
		}
		if cc.DialTimeout != c.dialTimeout {
			t.Errorf("%s: client dial timeout %s, want %s", tc.name, cc.DialTimeout, c.dialTimeout)
		}
	}
}
