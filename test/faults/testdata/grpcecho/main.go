// Command grpcecho is the gRPC fault scenarios' service process: an App
// serving grpctest's Echo over gRPC (and the usual HTTP health), registered
// in etcd, stopped by signals like any Warren service. Built by the tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/grpctransport/grpctest"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
)

func main() {
	endpoints := flag.String("etcd", "", "etcd endpoints, comma-separated")
	prefix := flag.String("prefix", "", "etcd key prefix")
	id := flag.String("id", "", "instance ID")
	ttl := flag.Duration("ttl", 3*time.Second, "lease TTL")
	grace := flag.Duration("grace", time.Second, "grace period")
	flag.Parse()
	if err := run(*endpoints, *prefix, *id, *ttl, *grace); err != nil {
		fmt.Fprintln(os.Stderr, "grpcecho:", err)
		os.Exit(1)
	}
}

func run(endpoints, prefix, id string, ttl, grace time.Duration) error {
	ctx := context.Background()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(strings.Split(endpoints, ",")...), etcd.WithPrefix(prefix), etcd.WithTTL(ttl))
	if err != nil {
		return err
	}
	gs, err := grpcserver.New(func(g *grpc.Server) { grpctest.Register(g, id) }, grpcserver.WithAddr("127.0.0.1:0"))
	if err != nil {
		return err
	}
	a, err := app.New("gecho", http.NotFoundHandler(), reg, app.WithServer(gs), app.WithListen("127.0.0.1:0"),
		app.WithID(id), app.WithGracePeriod(grace), app.WithSelfCheckTimeout(30*time.Second))
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
