package embedetcd

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/warren-mesh/warren/framework/registry"
)

func newClient(t *testing.T, s *Server) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func TestServer_RestartKeepsDataAndEndpoints(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eps := s.Endpoints()
	cli := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Stop with a live client took %s; the front door should make it quick", d)
	}
	if s.Running() {
		t.Fatal("Running after Stop")
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = cli.Get(short, "k")
	cancelShort()
	if err == nil {
		t.Fatal("Get succeeded while etcd is stopped")
	}

	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if got := s.Endpoints(); got[0] != eps[0] {
		t.Fatalf("endpoints moved: %v → %v", eps, got)
	}
	// The same client, never recreated, reads the value written before.
	resp, err := cli.Get(ctx, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("after restart Get = %v, %v", resp, err)
	}
}

func TestServer_CloseIsIdempotentAndRemovesTempDir(t *testing.T) {
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("temp dir %s still there: %v", dir, err)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) || !errors.Is(err, registry.ErrClosed) {
		t.Fatalf("Start after Close = %v", err)
	}
}

func TestServer_NewDoesNotStartUntilAsked(t *testing.T) {
	dir := t.TempDir()
	s, err := New(WithDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Running() {
		t.Fatal("running before Start")
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("given dir removed: %v", err)
	}
}

// While etcd is down — before the first Start and after a Stop — every one
// of the Server's ports stays bound, so no other process can take one and
// make the restart fail, and clients are refused as by a stopped etcd.
// Close lets go of all three.
func TestServer_PortsStayHeldWhileEtcdIsDown(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ports := []string{s.front, s.client, s.peer}
	assertHeld := func(when string) {
		t.Helper()
		for _, addr := range ports {
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				t.Fatalf("%s: %s could be bound by someone else", when, addr)
			}
		}
		c, err := net.DialTimeout("tcp", s.front, 2*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("%s: a client could connect to a stopped etcd", when)
		}
		if n := s.Accepted(); n != 0 {
			t.Fatalf("%s: %d connections counted as accepted", when, n)
		}
	}
	assertHeld("after New")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	assertHeld("after Stop")
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	cli := newClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("after a restart on the held ports: %v", err)
	}
	if s.Accepted() == 0 {
		t.Fatal("the client's connection was not counted")
	}
	if err := s.Stop(); err != nil { // Close must let go of held ports too
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, addr := range ports {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("after Close %s is still held: %v", addr, err)
		}
		ln.Close()
	}
}
