package silent

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/acceptloop"
	"github.com/warren-mesh/warren/internal/fdshort"
)

// A failed accept (EMFILE: the test process out of descriptors for a
// moment) does not end the listener: once descriptors are free again, the
// connection that waited is accepted and held, and so is a new one. The
// loop used to return on any error, leaving a port nobody accepted on.
// Runs in a child process (fdshort); a connection counts as accepted when
// the process holds its server-side socket.
func TestListen_KeepsAcceptingAfterRunningOutOfDescriptors(t *testing.T) {
	if fdshort.InParent(t) {
		return
	}
	var failed atomic.Int64
	addr := listen(t, acceptloop.WithFailed(func(error) { failed.Add(1) }))
	base := sockets(t)

	_, release := fdshort.Dial(t, addr, failed.Load)
	release()
	waitSockets(t, base+2, "the connection that waited out the shortage (client and server side)")

	c2, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial after the shortage: %v", err)
	}
	defer c2.Close()
	waitSockets(t, base+4, "a new connection after the shortage")
}

// sockets counts the process's open socket descriptors.
func sockets(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents { // bounded: the directory was read once
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// waitSockets waits up to 10 s for want open sockets.
func waitSockets(t *testing.T, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for sockets(t) < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d sockets open after 10 s, want %d or more (not accepted)", what, sockets(t), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
