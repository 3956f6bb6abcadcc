package grpcresolver_test

import (
	"context"
	"log"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// A plain grpc-go client of the user service, balanced by grpc's own
// round_robin over the instances etcd lists; any registry works the same.
func Example() {
	ctx := context.Background()
	reg, err := etcd.New(ctx, etcd.WithEndpoints("127.0.0.1:2379"))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close()
	b, err := grpcresolver.NewBuilder(reg)
	if err != nil {
		log.Fatal(err)
	}
	cc, err := grpc.NewClient("warren:///user",
		grpc.WithResolvers(b),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Any generated client works on cc; health is served by every Warren
	// gRPC server.
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		log.Fatal(err)
	}
	log.Println("user:", resp.GetStatus())
}
