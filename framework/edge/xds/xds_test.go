package xds_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	_ "google.golang.org/grpc/xds" // grpc-go's own xDS resolver and balancers: the client under test

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/xds"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/internal/proc"
)

// clientEnv makes the test binary a proxyless gRPC client (TestMain):
// grpc-go reads GRPC_XDS_BOOTSTRAP once per process, so the client runs
// in a process of its own started with it set.
const clientEnv = "WARREN_TEST_XDS_CLIENT"

func TestMain(m *testing.M) {
	if target := os.Getenv(clientEnv); target != "" {
		os.Exit(xdsClient(target))
	}
	os.Exit(m.Run())
}

// xdsClient calls target every 50 ms and prints which backend answered
// ("ok NAME") or the error ("err …"), until stdin closes or 3 minutes pass.
func xdsClient(target string) int {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Println("fatal", err)
		return 1
	}
	defer conn.Close()
	stop := make(chan struct{})
	go func() { // ends the loop when the parent closes our stdin
		bufio.NewReader(os.Stdin).ReadString('\n')
		close(stop)
	}()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.After(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var md metadata.MD
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		cancel()
		if err != nil {
			fmt.Println("err", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Println("ok", strings.Join(md.Get("backend"), ","))
		}
		select {
		case <-stop:
			return 0
		case <-deadline:
			return 0
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// grpcBackend serves gRPC health on loopback and names itself in a header.
func grpcBackend(t *testing.T, name, zone string) registry.Instance {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		grpc.SetHeader(ctx, metadata.Pairs("backend", name))
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(s, health.NewServer())
	go s.Serve(l) // owned by the test: Stop below
	t.Cleanup(s.Stop)
	port := l.Addr().(*net.TCPAddr).Port
	return registry.Instance{ID: name, Name: "user", Zone: zone, Endpoints: []string{
		registry.EndpointURL("http", "127.0.0.1", 1), // an HTTP endpoint gRPC clients must not be sent to
		registry.EndpointURL("grpc", "127.0.0.1", port),
	}}
}

// client is the re-executed test binary; lines has what it printed.
type client struct {
	mu    sync.Mutex
	lines []string
	cmd   *exec.Cmd
}

func startClient(t *testing.T, bootstrap []byte, target string) *client {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bootstrap.json")
	if err := os.WriteFile(path, bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+target, "GRPC_XDS_BOOTSTRAP="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	p, err := proc.Run(cmd) // killed with this process, whatever thread ends
	if err != nil {
		t.Fatal(err)
	}
	c := &client{cmd: cmd}
	read := make(chan struct{})
	go func() { // owned by the test: ends when the client's stdout closes
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.lines = append(c.lines, sc.Text())
			c.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-p.Exited():
		case <-time.After(15 * time.Second):
			p.Kill()
		}
		<-read
	})
	return c
}

func (c *client) since(n int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > len(c.lines) {
		n = len(c.lines)
	}
	return append([]string(nil), c.lines[n:]...)
}

func (c *client) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// waitRouting waits (90 s at most: a loaded machine, and grpc's own
// timers) until, among the client's answers after a mark, the last 40 in
// a row came from exactly the backends in want, every one of them seen.
func (c *client) waitRouting(t *testing.T, what string, want ...string) {
	t.Helper()
	mark := c.count()
	deadline := time.Now().Add(90 * time.Second)
	for {
		lines := c.since(mark)
		if len(lines) >= 40 {
			tail := lines[len(lines)-40:]
			seen := map[string]bool{}
			ok := true
			for _, l := range tail {
				name, found := strings.CutPrefix(l, "ok ")
				if !found || !contains(want, name) {
					ok = false
					break
				}
				seen[name] = true
			}
			if ok && len(seen) == len(want) {
				return
			}
		}
		if time.Now().After(deadline) {
			if len(lines) > 10 {
				lines = lines[len(lines)-10:]
			}
			t.Fatalf("%s: the xDS client does not route to exactly %v within 90 s; its last answers: %q", what, want, lines)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// grpc-go's xDS client (xds:///user) follows the registry through the
// control plane: register, a second zone, deregister.
func TestServer_GRPCXDSClientFollowsRegisterAndDeregister(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gRPC client process")
	}
	srv := memory.NewServer()
	reg := srv.Registry()
	defer reg.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	b1, b2 := grpcBackend(t, "user-1", "zone-a"), grpcBackend(t, "user-2", "zone-b")
	if err := reg.Register(ctx, b1); err != nil {
		t.Fatal(err)
	}
	cp, err := xds.New(xds.WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- cp.Serve(l) }()
	defer func() {
		cp.Stop()
		cp.Stop() // idempotent
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	w, err := edge.NewWatcher(srv.Registry(), []string{"user", "order"}, edge.WithDebounce(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	watched := make(chan error, 1)
	go func() { watched <- w.Run(ctx, cp.Apply) }()
	defer func() {
		cancel()
		if err := <-watched; err != nil {
			t.Errorf("watcher: %v", err)
		}
	}()

	boot, err := xds.GRPCBootstrap(xds.BootstrapConfig{Server: l.Addr().String(), Zone: "zone-a"})
	if err != nil {
		t.Fatal(err)
	}
	c := startClient(t, boot, "xds:///user")
	c.waitRouting(t, "one instance registered", "user-1")
	if err := reg.Register(ctx, b2); err != nil {
		t.Fatal(err)
	}
	c.waitRouting(t, "a second instance in another zone", "user-1", "user-2")
	if err := reg.Deregister(ctx, b1); err != nil {
		t.Fatal(err)
	}
	c.waitRouting(t, "the first deregistered", "user-2")
}

// testLogger shows the control plane's log with XDSDEBUG=1.
func testLogger() log.Logger {
	if os.Getenv("XDSDEBUG") != "" {
		return log.NewLogfmtLogger(log.NewSyncWriter(os.Stderr))
	}
	return log.NewNopLogger()
}
