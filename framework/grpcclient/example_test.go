package grpcclient_test

import (
	"context"
	"log"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/grpcclient"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/retry"
)

// One method of a service as a go-kit endpoint: Warren's balancer, retries
// and ejection pick the instance of every attempt; the method's go-kit
// grpctransport.Client encodes, invokes and decodes on it.
func ExampleNewEndpoint() {
	ctx := context.Background()
	reg, err := etcd.New(ctx, etcd.WithEndpoints("127.0.0.1:2379"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	c, err := grpcclient.New(ctx, reg, "echo",
		grpcclient.WithClientOptions(client.WithRetry(retry.WithPerAttemptTimeout(time.Second))))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	say := grpcclient.NewEndpoint(c, "/warren.test.v1.Echo/Say",
		func(_ context.Context, req any) (any, error) { return wrapperspb.String(req.(string)), nil },
		func(_ context.Context, reply any) (any, error) {
			return reply.(*wrapperspb.StringValue).GetValue(), nil
		},
		&wrapperspb.StringValue{}, grpcclient.Idempotent())
	out, err := say(ctx, "hello")
	if err != nil {
		log.Fatal(err) // errors.Is(err, yourpkg.ErrX) holds for the service's svcerr errors
	}
	log.Println(out)
}
