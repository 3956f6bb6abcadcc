package embedetcd

import (
	"context"
	"net"
	"testing"
	"time"
)

// The documented defaults: Start waits up to 15 s for etcd to serve, and
// fsync is off unless WithFsync turns it on.
func TestNew_DefaultsAreTheDocumentedOnes(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.opts.startTimeout != 15*time.Second {
		t.Errorf("start timeout %s, documented as 15s", s.opts.startTimeout)
	}
	if !s.config().UnsafeNoFsync {
		t.Error("fsync is on by default, documented as off")
	}
	f, err := New(WithFsync())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.config().UnsafeNoFsync {
		t.Error("WithFsync left fsync off")
	}
}

// Stop cuts every connection through the front door itself, rather than
// waiting for etcd to end them: a client connection that sends nothing
// (a watch stream idling, a half-open dial) is closed by the time Stop
// returns, and does not hold Stop.
func TestServer_StopCutsAnIdleConnectionThroughTheFrontDoor(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	hung := false // a Stop that hangs holds the Server's lock: Close would too
	defer func() {
		if !hung {
			s.Close()
		}
	}()
	c, err := net.DialTimeout("tcp", s.Endpoints()[0], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The door has taken the connection once it counts it.
	for deadline := time.Now().Add(10 * time.Second); s.Accepted() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the front door did not accept the connection within 10s")
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		hung = true
		t.Fatal("Stop did not return within 60s with an idle client connection open")
	}
	// Already closed: the read returns at once, the deadline only keeps a
	// broken door from hanging the test.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("read a byte from a connection Stop should have cut")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the connection was still open after Stop returned")
	}
}

// Start on a running Server does nothing: it returns nil and the same etcd
// keeps serving, its data there.
func TestServer_StartWhileRunningIsANoOp(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cli := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start on a running server: %v", err)
	}
	if !s.Running() {
		t.Fatal("not running after a second Start")
	}
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("get after a second Start: %v, %v", resp, err)
	}
}
