package dnssrv_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/dnssrv"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// Tests of what one episode (the name emptied, the server silent) leaves
// for the next.

// A target that comes back after the name had no records at all
// (NXDOMAIN: a headless Service scaled to zero) and whose lookup fails now
// is left out, like any target never seen: the addresses it had before the
// empty answer belong to Pods that are gone (a StatefulSet's web-0 keeps
// its name, not its address). The empty answer forgot nothing before, and
// the old address was published as a live instance.
func TestInstancer_ATargetBackAfterAnEmptyAnswerHasNoAddressFromBefore(t *testing.T) {
	far := fmt.Sprintf("--srv-host=%s,b.far.example.org,8081,10,10", name)
	d := startDNS(t, 0, 1, srv("a", 8080, 10, 10), far, host("a", "192.0.2.1"), "--host-record=b.far.example.org,192.0.2.2")
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	rec.WaitFor(t, wait, "a and b", func(ev sd.Event) bool { return ev.Err == nil && len(ev.Instances) == 2 })

	d.stop()
	d = startDNS(t, d.port, 1)
	rec.WaitFor(t, wait, "an empty set without error", func(ev sd.Event) bool { return ev.Err == nil && len(ev.Instances) == 0 })

	// Both SRV records are back; b's address lookup is REFUSED now.
	d.stop()
	startDNS(t, d.port, 1, srv("a", 8080, 10, 10), far, host("a", "192.0.2.1"))
	ev, _ := rec.WaitFor(t, wait, "a back", registrytest.Has("a.user.shop.svc.cluster.local:8080"))
	if got, want := instances(ev), []seen{{"a.user.shop.svc.cluster.local:8080", "http://192.0.2.1:8080", 10}}; !slices.Equal(got, want) {
		t.Fatalf("instances %+v, want only a: b's address is from before the empty answer", got)
	}
}
