package nginx_test

import (
	"strings"
	"testing"

	"github.com/warren-mesh/warren/framework/edge/nginx"
)

// docs/edge.md, "TLS to the instances: not supported yet": an instance
// with only https:// (and grpcs://) endpoints is left out of the
// upstreams, since nginx is not set up for TLS to them, and a service
// whose instances are all TLS gets the down placeholder (502), not a
// server line nginx would speak plaintext to.
func TestRender_HTTPSOnlyInstancesAreLeftOutAndAnAllTLSServiceGetsThePlaceholder(t *testing.T) {
	s := snap(
		svc("user",
			in("user-plain", 0, "", "http://127.0.0.1:8001"),
			in("user-tls", 0, "", "https://127.0.0.1:8443", "grpcs://127.0.0.1:9443")),
		svc("order",
			in("order-tls", 0, "", "https://127.0.0.1:8444")),
	)
	got := render(t, s)
	if strings.Contains(got, "8443") || strings.Contains(got, "8444") || strings.Contains(got, "9443") {
		t.Errorf("a TLS endpoint reached nginx's upstreams:\n%s", got)
	}
	if !strings.Contains(got, "server 127.0.0.1:8001 ") {
		t.Errorf("the plaintext instance is missing:\n%s", got)
	}
	order := got[strings.Index(got, "upstream order {"):]
	if !strings.Contains(order, "server 127.0.0.1:1 down;") {
		t.Errorf("an all-TLS service did not get the down placeholder:\n%s", got)
	}

	r, err := nginx.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	d := r.Data(s)
	if len(d.Upstreams) != 2 || d.Upstreams[0].Skipped != 1 || d.Upstreams[1].Skipped != 1 ||
		d.Upstreams[0].SkippedIDs[0] != "user-tls" || d.Upstreams[1].SkippedIDs[0] != "order-tls" {
		t.Fatalf("upstreams %+v: want user-tls and order-tls counted as skipped", d.Upstreams)
	}
}
