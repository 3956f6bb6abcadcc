package warrencli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
)

// stoppableEtcd is an embedded etcd the test can stop and start again on
// the same endpoint, and a registry client of it.
func stoppableEtcd(t *testing.T, ctx context.Context, started bool) (*embedetcd.Server, *etcd.Registry) {
	t.Helper()
	srv, err := embedetcd.New(embedetcd.WithDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if started {
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...), etcd.WithTTL(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return srv, reg
}

// Restarting warren nginx while the registry is down keeps the upstreams
// file of the previous run (the last good set) instead of writing empty
// upstreams, and applies the registry's set once it answers (tester's
// finding 1).
func TestNginx_ARestartWhileTheRegistryIsDownKeepsTheLastGoodUpstreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, reg := stoppableEtcd(t, ctx, true)
	endpoints := strings.Join(srv.Endpoints(), ",")
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: t.TempDir(), Services: []string{"user"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	dir := filepath.Dir(p.Upstreams())
	args := []string{"nginx", "--registry", "etcd", "--etcd-endpoints", endpoints, "--services", "user",
		"--out", p.Upstreams(), "--nginx-prefix", dir, "--nginx-conf", filepath.Join(dir, "nginx.conf"), "--debounce", "20ms"}

	a := httpBackend(t, "user-a")
	if err := reg.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	ctx1, cancel1 := context.WithCancel(ctx)
	first := start(ctx1, args...)
	answers(t, p.URL()+"/user/", "user-a", 60*time.Second, first.stderr.String)
	cancel1()
	first.exit(t)
	good, err := os.ReadFile(p.Upstreams())
	if err != nil {
		t.Fatal(err)
	}

	if err := srv.Stop(); err != nil { // the registry goes away; user-a keeps serving
		t.Fatal(err)
	}
	second := start(ctx, args...)
	// Past the start wait (10 s), the edge says what it keeps; the file
	// must not change meanwhile, nor after.
	deadline := time.Now().Add(60 * time.Second)
	for {
		if now, _ := os.ReadFile(p.Upstreams()); string(now) != string(good) {
			t.Fatalf("the last good upstreams file was replaced while the registry was down:\n%s\nlog:\n%s", now, second.stderr)
		}
		if strings.Contains(second.stderr.String(), "keeping the existing upstreams file") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no warning that the existing file is kept within 60 s; log:\n%s", second.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a write would follow the warning at once
	if now, _ := os.ReadFile(p.Upstreams()); string(now) != string(good) {
		t.Fatalf("the last good upstreams file was replaced after the warning:\n%s\nlog:\n%s", now, second.stderr)
	}
	answers(t, p.URL()+"/user/", "user-a", 5*time.Second, second.stderr.String)

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	b := httpBackend(t, "user-b")
	if err := reg.Register(ctx, b); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		now, _ := os.ReadFile(p.Upstreams())
		if strings.Contains(string(now), "# user-b") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry's set was not applied within 60 s of etcd answering:\n%s\nlog:\n%s", now, second.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	answers(t, p.URL()+"/user/", "user-b", 30*time.Second, second.stderr.String)
	cancel()
	second.exit(t)
}

// Restarting warren xds while the registry is down publishes the service's
// cluster without endpoints, never an empty load assignment (which would
// leave clients with no target), and the registry's set once it answers
// (tester's finding 1).
func TestXDS_AStartWhileTheRegistryIsDownPublishesNoEmptyEndpoints(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, reg := stoppableEtcd(t, ctx, false)
	cmd := start(ctx, "xds", "--registry", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","), "--services", "user",
		"--listen", "127.0.0.1:0", "--debounce", "20ms")
	addr := cmd.word(t, 4)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &core.Node{Id: "test", UserAgentName: "gRPC Go"}
	for _, typ := range []string{resource.ClusterType, resource.EndpointType} {
		if err := stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typ, ResourceNames: []string{"user"}}); err != nil {
			t.Fatal(err)
		}
	}
	type answer struct {
		resp *discovery.DiscoveryResponse
		err  error
	}
	answersCh := make(chan answer, 16)
	go func() { // owned by the test: ends when ctx ends the stream
		for {
			resp, err := stream.Recv()
			answersCh <- answer{resp, err}
			if err != nil {
				return
			}
			// ACK, so the server sends the next version.
			stream.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resp.TypeUrl, ResourceNames: []string{"user"}, VersionInfo: resp.VersionInfo, ResponseNonce: resp.Nonce})
		}
	}()
	// endpoints returns the number of endpoints of user in an EDS answer,
	// or -1 when the answer has no assignment for user.
	endpoints := func(resp *discovery.DiscoveryResponse) int {
		for _, r := range resp.Resources {
			var cla endpoint.ClusterLoadAssignment
			if err := r.UnmarshalTo(&cla); err != nil {
				t.Fatal(err)
			}
			if cla.ClusterName == "user" {
				n := 0
				for _, loc := range cla.Endpoints {
					n += len(loc.LbEndpoints)
				}
				return n
			}
		}
		return -1
	}
	next := func(what string) *discovery.DiscoveryResponse {
		t.Helper()
		select {
		case a := <-answersCh:
			if a.err != nil {
				t.Fatalf("stream ended while waiting for %s: %v; log:\n%s", what, a.err, cmd.stderr)
			}
			return a.resp
		case <-time.After(60 * time.Second):
			t.Fatalf("no xDS answer within 60 s while waiting for %s; log:\n%s", what, cmd.stderr)
			return nil
		}
	}
	// The first snapshot goes out after the 10 s start wait: the cluster,
	// and no empty load assignment.
	for gotCluster := false; !gotCluster; {
		resp := next("the cluster")
		switch resp.TypeUrl {
		case resource.ClusterType:
			gotCluster = len(resp.Resources) == 1
		case resource.EndpointType:
			if n := endpoints(resp); n >= 0 {
				t.Fatalf("EDS sent user with %d endpoints while the registry has never listed it; log:\n%s", n, cmd.stderr)
			}
		}
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	inst := registry.Instance{ID: "user-1", Name: "user", Endpoints: []string{"grpc://127.0.0.1:9"}}
	if err := reg.Register(ctx, inst); err != nil {
		t.Fatal(err)
	}
	// Once etcd answers its set goes out: possibly empty first (etcd may
	// be listed before Register writes the record: the service's real
	// state then, as a loaded run showed), then the instance.
	for {
		resp := next("user's endpoint")
		if resp.TypeUrl == resource.EndpointType && endpoints(resp) == 1 {
			break
		}
	}
	cancel()
	cmd.exit(t)
}

// A registry outage while warren nginx runs is logged once when it starts
// (warn) and once when it ends (info), and no "upstreams applied" is
// logged while nothing is written (tester's finding 3).
func TestNginx_ARegistryOutageIsLoggedOncePerTransition(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, reg := stoppableEtcd(t, ctx, true)
	a := httpBackend(t, "user-a")
	if err := reg.Register(ctx, a); err != nil {
		t.Fatal(err)
	}
	cmd := start(ctx, "nginx", "--registry", "etcd", "--etcd-endpoints", strings.Join(srv.Endpoints(), ","), "--services", "user",
		"--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--debounce", "20ms")
	url := strings.TrimSuffix(cmd.word(t, 3), ":")
	answers(t, url+"/user/", "user-a", 60*time.Second, cmd.stderr.String)
	waitLog(t, cmd, "upstreams applied", 10*time.Second) // logged once the reload returned
	applied := strings.Count(cmd.stderr.String(), "upstreams applied")

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, cmd, "registry listing failing", 60*time.Second)
	time.Sleep(8 * time.Second) // several of the instancer's retries, each an error event
	answers(t, url+"/user/", "user-a", 5*time.Second, cmd.stderr.String)
	log := cmd.stderr.String()
	if n := strings.Count(log, "registry listing failing"); n != 1 {
		t.Fatalf("%d outage warnings; want 1:\n%s", n, log)
	}
	if n := strings.Count(log, "upstreams applied"); n != applied {
		t.Fatalf("%d more \"upstreams applied\" during the outage, with nothing written:\n%s", n-applied, log)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, cmd, "registry listing works again", 60*time.Second)
	time.Sleep(2 * time.Second)
	if n := strings.Count(cmd.stderr.String(), "registry listing works again"); n != 1 {
		t.Fatalf("%d recovery lines; want 1:\n%s", n, cmd.stderr)
	}
	cancel()
	cmd.exit(t)
}

// An instance nginx cannot use (https only: no TLS to upstreams yet) is
// named in one warning per change of that list, while the log's instance
// counts go on counting it (tester's finding 7).
func TestNginx_WarnsOnceAboutInstancesItLeavesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	endpoints, reg := etcdForTest(t, ctx)
	a := httpBackend(t, "user-a")
	tlsOnly := registry.Instance{ID: "user-tls", Name: "user", Endpoints: []string{"https://127.0.0.1:9", "grpcs://127.0.0.1:9"}}
	for _, inst := range []registry.Instance{a, tlsOnly} {
		if err := reg.Register(ctx, inst); err != nil {
			t.Fatal(err)
		}
	}
	cmd := start(ctx, "nginx", "--registry", "etcd", "--etcd-endpoints", endpoints, "--services", "user",
		"--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--debounce", "20ms")
	waitLog(t, cmd, "upstreams applied", 60*time.Second)
	if err := reg.Register(ctx, httpBackend(t, "user-b")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(cmd.stderr.String(), "upstreams applied") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("user-b not applied within 60 s; log:\n%s", cmd.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	log := cmd.stderr.String()
	if n := strings.Count(log, "instances left out of nginx"); n != 1 || !strings.Contains(log, "skipped=\"user: user-tls\"") {
		t.Fatalf("%d warnings about instances left out; want one naming user-tls:\n%s", n, log)
	}
	cancel()
	cmd.exit(t)
}
