package warrencli

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

	"github.com/warren-mesh/warren/framework/registry"
)

// warren xds without --services serves every service etcd lists, over
// ADS, and writes both bootstraps.
func TestXDS_ServesEveryServiceTheRegistryListsOverADS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	endpoints, reg := etcdForTest(t, ctx)
	inst := registry.Instance{ID: "user-1", Name: "user", Zone: "zone-a", Endpoints: []string{"grpc://127.0.0.1:9"}}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cmd := start(ctx, "xds", "--registry", "etcd", "--etcd-endpoints", endpoints, "--listen", "127.0.0.1:0", "--debounce", "20ms",
		"--envoy-bootstrap", filepath.Join(dir, "envoy.json"), "--grpc-bootstrap", filepath.Join(dir, "grpc.json"))
	addr := cmd.word(t, 4)
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
		t.Fatalf("no CDS answer: %v; log:\n%s", err, cmd.stderr)
	}
	if len(resp.Resources) != 1 || !strings.Contains(string(resp.Resources[0].Value), "user") {
		t.Fatalf("CDS answer %v: want the one cluster user", resp)
	}
	cancel()
	cmd.exit(t)
}

// A scheme that needs TLS to the instances is a usage error (exit 2), not
// a cluster served as plaintext (tester's finding 7).
func TestXDS_RefusesSchemesThatNeedTLS(t *testing.T) {
	for _, args := range [][]string{
		{"xds", "--services", "user", "--grpc-schemes", "grpcs"},
		{"xds", "--services", "user", "--envoy-schemes", "http,https"},
	} {
		var out, errOut strings.Builder
		// Bounded: were the scheme accepted, the command would serve
		// until its context ends.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		code := run(ctx, args, &out, &errOut)
		cancel()
		if code != 2 || !strings.Contains(errOut.String(), "TLS") {
			t.Errorf("%v: exit %d, %q; want exit 2 naming TLS", args, code, errOut.String())
		}
	}
}
