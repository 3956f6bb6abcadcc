package xds_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/xds"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// controlPlane is one run of warren xds on addr, its log in logs.
type controlPlane struct {
	srv    *xds.Server
	logs   *syncbuf.Buffer
	served chan error
}

func serveOn(t *testing.T, addr string, snaps ...edge.Snapshot) *controlPlane {
	t.Helper()
	cp := &controlPlane{logs: &syncbuf.Buffer{}, served: make(chan error, 1)}
	var err error
	if cp.srv, err = xds.New(xds.WithLogger(log.NewLogfmtLogger(cp.logs))); err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if _, err := cp.srv.Sync(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	// The port the previous run had: a client reconnects to where it was.
	var l net.Listener
	deadline := time.Now().Add(10 * time.Second)
	for l, err = net.Listen("tcp", addr); err != nil; l, err = net.Listen("tcp", addr) {
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s again: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	go func() { cp.served <- cp.srv.Serve(l) }() // owned by the test: stop ends it
	t.Cleanup(cp.stop)
	return cp
}

func (cp *controlPlane) stop() {
	cp.srv.Stop()
	select {
	case <-cp.served:
	case <-time.After(10 * time.Second):
	}
}

// waitStream waits (60 s at most) until a client's stream reached it.
func (cp *controlPlane) waitStream(t *testing.T, what string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(cp.logs.String(), "xds stream opened") {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the client did not reconnect within 60 s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A client that reconnects to another run of warren xds on the same
// address (a restart; production.md: several behind one address) gets
// that run's current set, although it numbers its versions from 1 too
// and the client asks with the version of the same number it had from
// the previous run; and a run that starts while the registry is down
// (the service Unlisted) leaves the client the endpoints it had.
func TestServer_AReconnectingClientGetsTheCurrentSetOfAnotherRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gRPC client process")
	}
	u1, u2, u3 := grpcBackend(t, "user-1", "zone-a"), grpcBackend(t, "user-2", "zone-a"), grpcBackend(t, "user-3", "zone-a")
	listed := func(insts ...registry.Instance) edge.Snapshot {
		return edge.Snapshot{Services: []edge.Service{{Name: "user", Instances: insts}}}
	}
	unlisted := edge.Snapshot{Services: []edge.Service{{Name: "user", Unlisted: true}}}
	heavier := u1
	heavier.Weight = 200

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	a := serveOn(t, addr, listed(u1), listed(heavier)) // versions 1 and 2: user-1
	boot, err := xds.GRPCBootstrap(xds.BootstrapConfig{Server: addr, Zone: "zone-a"})
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, boot, "xds:///user")
	c.waitRouting(t, "the first run", "user-1")

	// The next run has its own version 2 (user-2) when the client, which
	// holds the first run's version 2, comes back.
	a.stop()
	b := serveOn(t, addr, unlisted, listed(u2))
	b.waitStream(t, "second run")
	c.waitRouting(t, "a run whose version 2 is another set", "user-2")

	// A run that has not listed the service: no endpoints are sent, and
	// the client keeps the ones it has; every call after it reconnects
	// still reaches user-2.
	b.stop()
	mark := c.count()
	d := serveOn(t, addr, unlisted)
	d.waitStream(t, "third run")
	deadline := time.Now().Add(90 * time.Second)
	for c.count() < mark+80 {
		if time.Now().After(deadline) {
			t.Fatal("the client stopped answering")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, line := range c.since(mark) {
		if line != "ok user-2" {
			t.Fatalf("a call after the restart with the service unlisted: %q; want user-2 kept (all: %q)", line, c.since(mark))
		}
	}
	if _, err := d.srv.Sync(context.Background(), listed(u3)); err != nil {
		t.Fatal(err)
	}
	c.waitRouting(t, "the service listed by the third run", "user-3")
}
