package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// warren xds without --services serves every service etcd lists, over
// ADS, and writes both bootstraps.
func TestXDS_ServesEveryServiceTheRegistryListsOverADS(t *testing.T) {
	srv, err := embedetcd.Start(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	inst := registry.Instance{ID: "user-1", Name: "user", Zone: "zone-a", Endpoints: []string{"grpc://127.0.0.1:9"}}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	stdout, stderr := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"xds", "--registry", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","),
			"--listen", "127.0.0.1:0", "--debounce", "20ms",
			"--envoy-bootstrap", filepath.Join(dir, "envoy.json"), "--grpc-bootstrap", filepath.Join(dir, "grpc.json")}, stdout, stderr)
	}()
	var addr string
	deadline := time.Now().Add(60 * time.Second)
	for addr == "" {
		if f := strings.Fields(stdout.String()); len(f) > 4 {
			addr = f[4]
		}
		select {
		case code := <-done:
			t.Fatalf("warren xds exited %d: %s", code, stderr)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no address within 60 s: %q %q", stdout, stderr)
		}
	}
	for _, f := range []string{"envoy.json", "grpc.json"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !strings.Contains(string(b), strings.Split(addr, ":")[1]) {
			t.Fatalf("%s: %v; want a bootstrap naming %s:\n%s", f, err, addr, b)
		}
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sctx, scancel := context.WithTimeout(ctx, 60*time.Second)
	defer scancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(sctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "test", UserAgentName: "gRPC Go"}, TypeUrl: resource.ClusterType}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatalf("no CDS answer: %v; log:\n%s", err, stderr)
	}
	if len(resp.Resources) != 1 || !strings.Contains(string(resp.Resources[0].Value), "user") {
		t.Fatalf("CDS answer %v: want the one cluster user", resp)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after the signal; log:\n%s", code, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("warren xds did not stop within 30 s of its context ending")
	}
}
