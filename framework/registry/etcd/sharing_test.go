package etcd

import (
	"fmt"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/embedetcd"
)

// TestRegistry_OneConnectionForTheRegistrarAndEveryInstancer counts the TCP
// connections the etcd server accepts from a Registry that registers an
// instance and watches five services: one, however many instancers.
// (Round 1 opened a client per instancer: six.)
func TestRegistry_OneConnectionForTheRegistrarAndEveryInstancer(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// No keepalive pings during the test: on a loaded machine a late ping
	// answer would make gRPC redial, a second connection that is not a
	// second client.
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithDialKeepAlive(time.Hour, time.Hour))
	ctx := testCtx(t)
	inst := testInstance(4242)
	if err := r.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	var ins []*Instancer
	for i := range 5 {
		svc := fmt.Sprintf("dep-%d", i)
		if i == 0 {
			svc = inst.Name
		}
		in, err := r.NewInstancer(ctx, svc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(in.Stop)
		ins = append(ins, in)
	}
	waitFor(t, 10*time.Second, "every instancer listed, the first with the instance", func() bool {
		for _, in := range ins {
			if in.State().Err != nil {
				return false
			}
		}
		return hasExactly(ins[0], inst)
	})
	if n := srv.Accepted(); n != 1 {
		t.Fatalf("etcd accepted %d client connections, want 1 for the registrar and 5 instancers", n)
	}
	// Stopping instancers leaves the shared client to the others.
	ins[1].Stop()
	if err := r.Deregister(ctx, inst); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the withdrawal seen by a live instancer", func() bool { return hasExactly(ins[0]) })
}

// Client is the Registry's own client, not another connection: a service
// that keeps state in the same etcd (an idempotency store) adds no
// connection, and the Registry's Close closes it.
func TestRegistry_ClientIsTheSharedOne(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	r, _ := newTestRegistry(t, srv, testPrefix(t), WithDialKeepAlive(time.Hour, time.Hour))
	ctx := testCtx(t)
	if err := r.Register(ctx, testInstance(4243)); err != nil {
		t.Fatal(err)
	}
	cli, err := r.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, testPrefix(t)+"state/x", "1"); err != nil {
		t.Fatal(err)
	}
	if n := srv.Accepted(); n != 1 {
		t.Fatalf("etcd accepted %d client connections, want 1: Client is the registrar's", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, testPrefix(t)+"state/x"); err == nil {
		t.Fatal("the Registry's client still works after Close; want it closed with the Registry")
	}
}
