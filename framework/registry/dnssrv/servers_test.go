package dnssrv_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/registry/dnssrv"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// A first server that does not answer costs one timeout: the question goes
// to the next server, which is asked first from then on. Before, the
// instancer asked one server only (the first nameserver of resolv.conf
// by default), so a host whose first nameserver was down had no DNS
// discovery while its second answered; and without the "asked first from
// then on" every question of every resolution would wait out the dead
// server's timeout before going on.
func TestInstancer_AServerThatDoesNotAnswerIsPassedOverAndThenAskedNoMore(t *testing.T) {
	records := []string{srv("a", 8080, 10, 10), host("a", "192.0.2.1")}
	silent := startDNS(t, 0, 0, records...)
	live := startDNS(t, 0, 0, records...)
	silent.pause(t)
	logs := &syncbuf.Buffer{}
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServers(silent.addr(), live.addr()),
		dnssrv.WithTimeout(time.Second), dnssrv.WithTTLBounds(200*time.Millisecond, time.Second),
		dnssrv.WithLogger(log.NewLogfmtLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	ev, _ := rec.WaitFor(t, wait, "an answer", func(ev sd.Event) bool { return ev.Err != nil || len(ev.Instances) > 0 })
	if ev.Err != nil || !registrytest.Has("a.user.shop.svc.cluster.local:8080")(ev) {
		t.Fatalf("first event %v (err %v); want a's instance from the second server, without an error", ev.Instances, ev.Err)
	}
	queued := silent.queuedQuestions(t)
	if queued == 0 {
		t.Fatal("no question reached the silent server: the test does not show it was passed over")
	}
	// Re-resolved every 200 ms (TTL 0): several more resolutions, each
	// of which would put another question in the silent server's queue.
	before := live.srvQueries()
	for end := time.Now().Add(wait); live.srvQueries() < before+5; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d SRV questions to the live server within %s, want 5", live.srvQueries()-before, wait)
		}
	}
	if now := silent.queuedQuestions(t); now != queued {
		t.Fatalf("the silent server's queue grew from %d to %d bytes over 5 resolutions: it is still asked first", queued, now)
	}
	if n := strings.Count(logs.String(), "asking the next one first"); n != 1 {
		t.Fatalf("%d lines saying the server was passed over, want 1:\n%s", n, logs.String())
	}
	for _, ev := range rec.Events() {
		if ev.Err != nil {
			t.Fatalf("an error event (%v); the second server answered every question", ev.Err)
		}
	}
}

// A question a server refuses (REFUSED; SERVFAIL alike) goes to the next
// server: here the first has no data for a target outside its zone and
// the second has its address, so the target is published. With one server
// it is left out (TestInstancer_ATargetWhoseLookupFailsIsLeftOut).
func TestInstancer_ARefusedQuestionGoesToTheNextServer(t *testing.T) {
	far := fmt.Sprintf("--srv-host=%s,far.example.org,8081,10,10", name)
	refusing := startDNS(t, 0, 1, srv("a", 8080, 10, 10), far, host("a", "192.0.2.1"))
	knowing := startDNS(t, 0, 1, srv("a", 8080, 10, 10), far, host("a", "192.0.2.1"), "--host-record=far.example.org,192.0.2.9")
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServers(refusing.addr(), knowing.addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	ev, _ := registrytest.Record(t, in).WaitFor(t, wait, "an answer", func(ev sd.Event) bool { return ev.Err != nil || len(ev.Instances) > 0 })
	got := instances(ev)
	if ev.Err != nil || len(got) != 2 || got[1] != (seen{"far.example.org:8081", "http://192.0.2.9:8081", 10}) {
		t.Fatalf("instances %+v (err %v); want a and far, far's address from the second server", got, ev.Err)
	}
}

// An outage is one error event, not one per retry: the error named the
// local port of each question's socket, so every retry (here every
// 200 ms) was a new error and the Cache sent subscribers another event.
func TestInstancer_AnOutageIsOneErrorEventNotOnePerRetry(t *testing.T) {
	d := startDNS(t, 0, 0, srv("a", 8080, 10, 10), host("a", "192.0.2.1"))
	logs := &syncbuf.Buffer{}
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()), dnssrv.WithTimeout(300*time.Millisecond),
		dnssrv.WithTTLBounds(200*time.Millisecond, 30*time.Second), dnssrv.WithLogger(log.NewLogfmtLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	rec := registrytest.Record(t, in)
	rec.WaitFor(t, wait, "a", registrytest.Has("a.user.shop.svc.cluster.local:8080"))
	d.stop()
	rec.WaitFor(t, wait, "an error", func(ev sd.Event) bool { return ev.Err != nil })
	before := strings.Count(logs.String(), "cannot read DNS") // a line per failed resolution
	time.Sleep(3 * time.Second)
	if n := strings.Count(logs.String(), "cannot read DNS") - before; n < 5 {
		t.Fatalf("%d failed resolutions in 3 s: too few retries for the test to show anything", n)
	}
	var errs []string
	for _, ev := range rec.Events() {
		if ev.Err != nil {
			errs = append(errs, ev.Err.Error())
		}
	}
	if len(errs) != 1 {
		t.Fatalf("%d error events in a 3 s outage, want 1:\n%s", len(errs), strings.Join(errs, "\n"))
	}
}
