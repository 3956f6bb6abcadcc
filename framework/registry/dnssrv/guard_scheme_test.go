package dnssrv_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/dnssrv"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// docs/kubernetes.md, DNS SRV discovery, "instance": the scheme comes
// from the SRV name's first label when it is http, https, grpc or grpcs;
// any other port name gives http. Only _http names were tested, so
// dropping grpcs (or grpc) from the list passed every test, and a
// headless Service's _grpcs port would have been dialled as http.
func TestInstancer_SchemeFromTheFirstLabel(t *testing.T) {
	labels := map[string]string{"http": "http", "https": "https", "grpc": "grpc", "grpcs": "grpcs", "metrics": "http"}
	var records []string
	for label := range labels {
		records = append(records, fmt.Sprintf("--srv-host=_%s._tcp.user.shop.svc.cluster.local,a.user.shop.svc.cluster.local,8080,10,10", label))
	}
	d := startDNS(t, 0, 1, append(records, host("a", "192.0.2.1"))...)
	for label, scheme := range labels {
		in, err := dnssrv.NewInstancer("_"+label+"._tcp.user.shop.svc.cluster.local", dnssrv.WithServer(d.addr()))
		if err != nil {
			t.Fatalf("%s: %v", label, err)
		}
		t.Cleanup(in.Stop) // after the recorder's Deregister (cleanups run last first)
		want := scheme + "://192.0.2.1:8080"
		registrytest.Record(t, in).WaitFor(t, wait, "_"+label+" as "+want, func(ev sd.Event) bool {
			got := instances(ev)
			return ev.Err == nil && len(got) == 1 && strings.EqualFold(got[0].ep, want)
		})
	}
}
