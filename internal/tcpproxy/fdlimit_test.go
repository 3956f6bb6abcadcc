package tcpproxy

import (
	"testing"
	"time"

	"github.com/warren-mesh/warren/internal/fdshort"
)

// An accept that fails because the process is out of file descriptors
// (EMFILE) does not end the proxy: once descriptors are free again, the
// connection that waited and a new one both get through. The accept loop
// used to return on any error, leaving a port nobody accepted on, so a
// fault test failed later with clients hanging on the proxy. The test runs
// in a child process (fdshort), so the shortage touches no other test.
func TestProxy_KeepsAcceptingAfterRunningOutOfDescriptors(t *testing.T) {
	if fdshort.InParent(t) {
		return
	}
	runOutOfDescriptors(t)
}

// runOutOfDescriptors is the child: it takes every descriptor the lowered
// limit leaves but one, dials the proxy with that one, so the proxy's
// accept has none, waits until the accept failed, and frees them. Then it
// runs short again and closes the proxy while its accepts fail: Close
// ends the retrying loop at once.
func runOutOfDescriptors(t *testing.T) {
	target := echo(t)
	p, err := New(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	waiting, release := fdshort.Dial(t, p.Addr(), p.acceptErrors.Load) // both end with the test too
	release()
	if got, err := roundTrip(waiting, "waited"); err != nil || got != "waited" {
		t.Fatalf("the connection that waited out the shortage: %q, %v (accept errors: %d)", got, err, p.acceptErrors.Load())
	}
	fresh := dial(t, p)
	if got, err := roundTrip(fresh, "fresh"); err != nil || got != "fresh" {
		t.Fatalf("a new connection after the shortage: %q, %v", got, err)
	}

	_, _ = fdshort.Dial(t, p.Addr(), p.acceptErrors.Load) // short until the test ends
	closed := make(chan struct{})
	go func() { // ends when Close returns (or the child's -test.timeout)
		defer close(closed)
		p.Close()
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s while accepts failed")
	}
}
