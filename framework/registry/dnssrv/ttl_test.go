package dnssrv_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"

	"github.com/warren-mesh/warren/framework/registry/dnssrv"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// WithTTLBounds' lower bound: records with TTL 0 (dnsmasq's default for
// local records) are still asked for at most once per min, not in a tight
// loop. A loop without the bound asks hundreds of times in the window.
func TestInstancer_TTLZeroStillWaitsTheMinimum(t *testing.T) {
	d := startDNS(t, 0, 0, srv("a", 8080, 10, 10), host("a", "192.0.2.1"))
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()), dnssrv.WithTTLBounds(time.Second, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	registrytest.Record(t, in).WaitFor(t, wait, "a", registrytest.Has("a.user.shop.svc.cluster.local:8080"))
	before, start := d.srvQueries(), time.Now()
	time.Sleep(3 * time.Second)
	n, window := d.srvQueries()-before, time.Since(start)
	if limit := int(window/time.Second) + 2; n > limit {
		t.Fatalf("%d SRV queries in %s with TTL 0 and a 1 s minimum: more than %d", n, window.Round(time.Millisecond), limit)
	}
}

// WithTTLBounds' upper bound: an answer with a day-long TTL is still read
// again after max, so a change shows up.
func TestInstancer_LongTTLIsReadAgainAfterTheMaximum(t *testing.T) {
	d := startDNS(t, 0, 86400, srv("a", 8080, 10, 10), host("a", "192.0.2.1"))
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()), dnssrv.WithTTLBounds(100*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	rec.WaitFor(t, wait, "a", registrytest.Has("a.user.shop.svc.cluster.local:8080"))
	d.stop()
	startDNS(t, d.port, 86400, srv("b", 8081, 10, 10), host("b", "192.0.2.2"))
	rec.WaitFor(t, wait, "only b, after at most the 1 s maximum", func(ev sd.Event) bool {
		return ev.Err == nil && slices.Equal(registrytest.IDs(ev), []string{"b.user.shop.svc.cluster.local:8081"})
	})
}

// An answer too large for UDP (truncated) is asked again over TCP: every
// target is published, not the part that fit.
func TestInstancer_TruncatedAnswerIsReadOverTCP(t *testing.T) {
	const n = 40
	records := []string{"--edns-packet-max=512"}
	for k := range n {
		target := fmt.Sprintf("target-with-a-long-name-%02d", k)
		records = append(records, srv(target, 8000+k, 10, 10), host(target, fmt.Sprintf("192.0.2.%d", k+1)))
	}
	d := startDNS(t, 0, 1, records...)
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	registrytest.Record(t, in).WaitFor(t, wait, fmt.Sprintf("all %d targets", n), func(ev sd.Event) bool {
		return ev.Err == nil && len(ev.Instances) == n
	})
}

// The same target and port listed twice (two SRV records differing only
// in weight) is one instance: a duplicate would double the target's share.
func TestInstancer_ATargetListedTwiceIsOneInstance(t *testing.T) {
	d := startDNS(t, 0, 1, srv("a", 8080, 10, 10), srv("a", 8080, 10, 20), srv("b", 8081, 10, 10),
		host("a", "192.0.2.1"), host("b", "192.0.2.2"))
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	ev, _ := registrytest.Record(t, in).WaitFor(t, wait, "a and b", func(ev sd.Event) bool {
		return ev.Err == nil && registrytest.Has("b.user.shop.svc.cluster.local:8081")(ev)
	})
	if len(ev.Instances) != 2 {
		t.Fatalf("instances %v; want a once and b", ev.Instances)
	}
}

// A lower TTL bound of 0 would let a TTL-0 answer loop; it is refused.
func TestNewInstancer_RefusesAZeroMinimumTTL(t *testing.T) {
	if in, err := dnssrv.NewInstancer(name, dnssrv.WithServer("127.0.0.1:53"), dnssrv.WithTTLBounds(0, time.Second)); err == nil {
		in.Stop()
		t.Fatal("WithTTLBounds(0, 1s) accepted")
	}
}
