package app

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// etcdRegistry starts an embedded etcd and an etcd registry over it whose
// records live ttl, with 1 s dial and request timeouts so that calls to a
// stopped etcd fail soon; both are closed when the test ends (the App's
// release closes the registry first, and Close is idempotent).
func etcdRegistry(t *testing.T, ttl time.Duration) (*embedetcd.Server, *etcd.Registry) {
	t.Helper()
	srv, err := embedetcd.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	reg, err := etcd.New(context.Background(), etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(ttl),
		etcd.WithDialTimeout(time.Second), etcd.WithRequestTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return srv, reg
}

// etcdRecords returns a function that reports how many records of
// service srv holds, read through a client of its own (closed when the
// test ends); a read that fails within 10 s fails the test.
func etcdRecords(t *testing.T, srv *embedetcd.Server, service string) func() int {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: srv.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli.Get(ctx, "/warren/services/"+service+"/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("reading etcd: %v", err)
		}
		return len(resp.Kvs)
	}
}
