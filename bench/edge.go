package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	_ "google.golang.org/grpc/xds" // the xDS client process's resolver

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/framework/edge/xds"
	"github.com/warren-mesh/warren/framework/embedetcd"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/internal/proc"
)

// edgeSamples is how many register and deregister round trips each edge
// figure has.
const edgeSamples = 30

// xdsClientEnv makes this program the edge suite's proxyless gRPC client.
const xdsClientEnv = "WARREN_BENCH_XDS_CLIENT"

// benchEdge measures, on one embedded etcd, how long a registry change
// takes to reach traffic through the edge (docs/edge.md), as a client
// sees it:
//
//   - nginx: Register of a second instance until nginx first answers from
//     it, and Deregister until nginx answers only from the first (the
//     first of 10 answers in a row) — watch, debounce (200 ms, the
//     default), render, nginx -t, reload;
//   - xDS: the same through warren's control plane to grpc-go's own xDS
//     client (xds:///NAME) in a process of its own.
func benchEdge(ctx context.Context, rep *report) error {
	srv, err := embedetcd.Start()
	if err != nil {
		return err
	}
	defer srv.Close()
	writer, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...))
	if err != nil {
		return err
	}
	defer writer.Close()
	reader, err := etcd.New(ctx, etcd.WithEndpoints(srv.Endpoints()...))
	if err != nil {
		return err
	}
	defer reader.Close()
	if err := edgeNginx(ctx, rep, writer, reader); err != nil {
		return fmt.Errorf("nginx: %w", err)
	}
	if err := edgeXDS(ctx, rep, writer, reader); err != nil {
		return fmt.Errorf("xds: %w", err)
	}
	return nil
}

// answer is which instance served one request, and when.
type answer struct {
	name string
	at   time.Time
}

// propagation times a register and a deregister of b while answers
// (from a client polling the edge) show which instance serves.
func propagation(ctx context.Context, reg registry.Registrar, a, b registry.Instance, answers <-chan answer) (up, down []time.Duration, err error) {
	wait := func(since time.Time, done func(answer) bool) error {
		limit := time.After(60 * time.Second)
		for {
			select {
			case ans := <-answers:
				if !ans.at.Before(since) && done(ans) {
					return nil
				}
			case <-limit:
				return errors.New("the edge did not follow the registry within 60 s")
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := reg.Register(ctx, a); err != nil {
		return nil, nil, err
	}
	if err := wait(time.Now(), func(ans answer) bool { return ans.name == a.ID }); err != nil {
		return nil, nil, err
	}
	for range edgeSamples {
		t0 := time.Now()
		if err := reg.Register(ctx, b); err != nil {
			return nil, nil, err
		}
		if err := wait(t0, func(ans answer) bool {
			if ans.name == b.ID {
				up = append(up, ans.at.Sub(t0))
				return true
			}
			return false
		}); err != nil {
			return nil, nil, err
		}
		t1 := time.Now()
		if err := reg.Deregister(ctx, b); err != nil {
			return nil, nil, err
		}
		var run []answer
		if err := wait(t1, func(ans answer) bool {
			if ans.name != a.ID {
				run = run[:0]
				return false
			}
			run = append(run, ans)
			if len(run) == 10 {
				down = append(down, run[0].at.Sub(t1))
				return true
			}
			return false
		}); err != nil {
			return nil, nil, err
		}
	}
	return up, down, reg.Deregister(ctx, a)
}

func edgeRows(rep *report, suite, upName, downName, note string, up, down []time.Duration) {
	rep.add(row{Suite: suite, Metric: upName + " p50", Value: ms(percentile(up, 50)), Unit: "ms", Note: note})
	rep.add(row{Suite: suite, Metric: upName + " p99", Value: ms(percentile(up, 99)), Unit: "ms", Note: note})
	rep.add(row{Suite: suite, Metric: downName + " p50", Value: ms(percentile(down, 50)), Unit: "ms", Note: "until the first of 10 answers in a row from the other instance"})
	rep.add(row{Suite: suite, Metric: downName + " p99", Value: ms(percentile(down, 99)), Unit: "ms", Note: "until the first of 10 answers in a row from the other instance"})
}

func edgeNginx(ctx context.Context, rep *report, reg registry.Registrar, disc registry.Discovery) error {
	const svc = "edgehttp"
	dir, err := os.MkdirTemp("", "warren-bench-nginx-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: dir, Services: []string{svc}})
	if err != nil {
		return err
	}
	defer p.Stop()
	r, err := nginx.NewRenderer()
	if err != nil {
		return err
	}
	syncer, err := nginx.NewSyncer(p.Upstreams(), r, p)
	if err != nil {
		return err
	}
	w, err := edge.NewWatcher(disc, []string{svc})
	if err != nil {
		return err
	}
	var insts []registry.Instance
	for _, name := range []string{"edgehttp-a", "edgehttp-b"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, name) })}
		go hs.Serve(l) // owned by edgeNginx: Close below
		defer hs.Close()
		insts = append(insts, registry.Instance{ID: name, Name: svc, Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", l.Addr().(*net.TCPAddr).Port)}})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan error, 1)
	go func() { watched <- w.Run(ctx, syncer.Apply) }()
	defer func() { cancel(); <-watched }()

	answers := make(chan answer, 1024)
	polled := make(chan struct{})
	go func() { // owned by edgeNginx: ends with ctx
		defer close(polled)
		c := &http.Client{Timeout: 5 * time.Second}
		for ctx.Err() == nil {
			resp, err := c.Get(p.URL() + "/" + svc + "/")
			at := time.Now()
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					select {
					case answers <- answer{name: string(b), at: at}:
					default: // the measurer is between samples: drop
					}
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-polled }()
	up, down, err := propagation(ctx, reg, insts[0], insts[1], answers)
	if err != nil {
		return err
	}
	edgeRows(rep, "edge-nginx", "register→nginx serves it", "deregister→nginx stops serving it", fmt.Sprintf("watch + 200 ms debounce + nginx -t + reload; %d samples, %d reloads", edgeSamples, syncer.Stats().Reloads), up, down)
	return nil
}

func edgeXDS(ctx context.Context, rep *report, reg registry.Registrar, disc registry.Discovery) error {
	const svc = "edgegrpc"
	cp, err := xds.New()
	if err != nil {
		return err
	}
	defer cp.Stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go cp.Serve(l) // owned by edgeXDS: cp.Stop ends it
	w, err := edge.NewWatcher(disc, []string{svc})
	if err != nil {
		return err
	}
	var insts []registry.Instance
	for i, name := range []string{"edgegrpc-a", "edgegrpc-b"} {
		gl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			grpc.SetHeader(ctx, metadata.Pairs("backend", name))
			return h(ctx, req)
		}))
		healthpb.RegisterHealthServer(gs, health.NewServer())
		go gs.Serve(gl) // owned by edgeXDS: Stop below
		defer gs.Stop()
		insts = append(insts, registry.Instance{ID: name, Name: svc, Zone: []string{"zone-a", "zone-b"}[i],
			Endpoints: []string{registry.EndpointURL("grpc", "127.0.0.1", gl.Addr().(*net.TCPAddr).Port)}})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watched := make(chan error, 1)
	go func() { watched <- w.Run(ctx, cp.Apply) }()
	defer func() { cancel(); <-watched }()

	dir, err := os.MkdirTemp("", "warren-bench-xds-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	boot, err := xds.GRPCBootstrap(xds.BootstrapConfig{Server: l.Addr().String()})
	if err != nil {
		return err
	}
	bootPath := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(bootPath, boot, 0o644); err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), xdsClientEnv+"=xds:///"+svc, "GRPC_XDS_BOOTSTRAP="+bootPath)
	cmd.Stderr = io.Discard
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	// Forked on a thread kept for the child's life: the parent-death
	// signal follows the forking thread, and this process's nginx and
	// Consul (internal/proc) end theirs when they stop.
	p, err := proc.Run(cmd)
	if err != nil {
		return err
	}
	answers := make(chan answer, 1024)
	read := make(chan struct{})
	go func() { // owned by edgeXDS: ends when the client's stdout closes
		defer close(read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ok" {
				continue
			}
			ns, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				continue
			}
			select {
			case answers <- answer{name: f[1], at: time.Unix(0, ns)}:
			default:
			}
		}
	}()
	defer func() {
		stdin.Close() // the client ends when its stdin closes
		select {
		case <-p.Exited():
		case <-time.After(10 * time.Second):
			p.Kill()
		}
		<-read
	}()
	up, down, err := propagation(ctx, reg, insts[0], insts[1], answers)
	if err != nil {
		return err
	}
	edgeRows(rep, "edge-xds", "register→xDS client routes to it", "deregister→xDS client stops routing to it", fmt.Sprintf("watch + 200 ms debounce + ADS push + grpc-go's xds balancer; %d samples", edgeSamples), up, down)
	return nil
}

// runXDSClient is the xDS suite's client process: it calls target about
// every 2 ms and prints "ok BACKEND UNIXNANO" per answer until its stdin
// closes.
func runXDSClient(target string) {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	stop := make(chan struct{})
	go func() { // ends the loop when the bench closes our stdin
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	hc := healthpb.NewHealthClient(conn)
	out := bufio.NewWriter(os.Stdout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var md metadata.MD
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
		cancel()
		if err == nil {
			fmt.Fprintf(out, "ok %s %d\n", strings.Join(md.Get("backend"), ","), time.Now().UnixNano())
			out.Flush()
		}
		select {
		case <-stop:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}
