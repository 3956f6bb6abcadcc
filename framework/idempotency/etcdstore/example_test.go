package etcdstore_test

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/warren-mesh/warren/framework/idempotency"
	"github.com/warren-mesh/warren/framework/idempotency/etcdstore"
)

type (
	Order         struct{ ID string }
	CreateRequest struct{ Item string }
	Orders        struct{ keys idempotency.Store }
)

// Create is a keyed method; fn writes the effect with its
// idempotency.EffectKey (see docs/client.md).
func (s *Orders) Create(ctx context.Context, req CreateRequest, fn func(context.Context) (Order, error)) (Order, error) {
	return idempotency.Do(ctx, s.keys, "order.Create", fn, idempotency.Request(req))
}

// The snippet of docs/client.md: the store every instance of a service
// shares, over the etcd client its registry uses too.
func ExampleNew() {
	endpoints := []string{"127.0.0.1:2379"}
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints}) // the registry's too: etcd.WithClient(cli)
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	keys, err := etcdstore.New(cli) // every instance: same etcd, same prefix
	if err != nil {
		panic(err)
	}
	_ = &Orders{keys: keys}
}
