package dnssrv_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/registry/dnssrv"
	"github.com/warren-mesh/warren/framework/registry/registrytest"
)

// pause stops the server's process (SIGSTOP): its sockets stay bound and
// questions queue unanswered, as with a server that hangs or a path that
// drops packets, not one whose port refuses. It runs again at the end of
// the test, before it is stopped.
func (d *dnsmasq) pause(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.cmd.Process.Signal(syscall.SIGCONT) })
}

// queuedQuestions reports how many bytes wait unread on the server's UDP
// socket (the rx_queue of /proc/net/udp): above 0, a question reached the
// paused server and is waiting for an answer.
func (d *dnsmasq) queuedQuestions(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", d.port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != local {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		n, err := strconv.ParseInt(rx, 16, 64)
		if err != nil {
			t.Fatalf("/proc/net/udp: %q: %v", line, err)
		}
		return int(n)
	}
	t.Fatalf("no UDP socket on 127.0.0.1:%d in /proc/net/udp", d.port)
	return 0
}

// Stop ends a query the server leaves unanswered, instead of waiting for
// the query's timeout (WithTimeout, here 45 s): the exchange did not watch
// the instancer's context, so Stop — and a Close that stops every
// instancer one after another — waited out a silent server.
func TestInstancer_StopEndsAQueryTheServerLeavesUnanswered(t *testing.T) {
	d := startDNS(t, 0, 0, srv("a", 8080, 10, 10), host("a", "192.0.2.1"))
	in, err := dnssrv.NewInstancer(name, dnssrv.WithServer(d.addr()), dnssrv.WithTimeout(45*time.Second),
		dnssrv.WithTTLBounds(100*time.Millisecond, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Stop()
	registrytest.Record(t, in).WaitFor(t, wait, "a", registrytest.Has("a.user.shop.svc.cluster.local:8080"))

	d.pause(t)
	for end := time.Now().Add(wait); d.queuedQuestions(t) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no question reached the paused server within %s", wait)
		}
	}
	stopped := make(chan struct{})
	go func() { in.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(15 * time.Second):
		t.Fatal("Stop still waiting 15 s after it was called: it waits out the 45 s query timeout")
	}
}
