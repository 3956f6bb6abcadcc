package devmesh_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/bootstrap"
	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/framework/transport"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// fakeTransports is what the fake service serves, by the name the mesh
// runs it under: "both" HTTP and gRPC (as a generated --grpc service),
// "grpc" gRPC alone, anything else HTTP alone. Its gRPC server has
// only the health service, which is all the mesh asks of it.
func fakeTransports(name string) (bootstrap.Transports, error) {
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	if name != "both" && name != "grpc" {
		return bootstrap.HTTP(h), nil
	}
	gs, err := grpcserver.New(func(*grpc.Server) {}, grpcserver.WithAddr(os.Getenv("WARREN_GRPC_LISTEN")))
	if err != nil {
		return bootstrap.Transports{}, err
	}
	ts := bootstrap.Transports{Servers: []transport.Server{gs}}
	if name == "both" {
		ts.HTTP = h
	}
	return ts, nil
}

// startMixedMesh starts one instance each of an HTTP-only service, one
// serving HTTP and gRPC, and a gRPC-only one; the mesh stops at cleanup.
func startMixedMesh(t *testing.T, ctx context.Context) (*devmesh.Mesh, *syncbuf.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root, bin := t.TempDir(), t.TempDir()
	// Names as long as the demo's (user, order): the summary must fit 100
	// columns for them.
	for _, svc := range []string{"both", "grpc", "http"} {
		dir := filepath.Join(root, "services", svc, "cmd", svc)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(exe, filepath.Join(bin, svc)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(fakeServiceEnv, "1")
	out := &syncbuf.Buffer{}
	m, err := devmesh.Start(ctx, devmesh.Config{Root: root, BinDir: bin, StateDir: t.TempDir(), Instances: 1,
		Backends: []devmesh.Backend{etcddev.Backend()}, Out: out, ReadyTimeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("Start: %v\n%s", err, out)
	}
	t.Cleanup(func() { m.Stop() })
	return m, out
}

// TestStart_BringsUpAGRPCOnlyInstanceReady: an instance that serves gRPC
// alone has no /readyz; the mesh asks its grpc.health.v1 readiness
// instead, so Start and WaitReady return once it is ready rather than
// timing out.
func TestStart_BringsUpAGRPCOnlyInstanceReady(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an etcd and four service processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	m, out := startMixedMesh(t, ctx)
	in := m.Instance("grpc", 1)
	if in == nil || len(in.Registered.Endpoints) != 1 || !strings.HasPrefix(in.Registered.Endpoints[0], "grpc://") {
		t.Fatalf("want grpc-1 listed with one grpc:// endpoint, got %+v\n%s", in, out)
	}
	extra, err := m.StartInstance("grpc", devmesh.InstanceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx, extra); err != nil {
		t.Fatalf("WaitReady of a second gRPC-only instance: %v\n%s", err, out)
	}
}

// TestPrintSummary_ShowsEveryRegisteredEndpoint: the ready table names,
// for every instance, each endpoint it registered — the gRPC address too,
// which a user needs for grpcurl or a client — in an HTTP and a GRPC
// column ("-" when none), in a table that fits 100 columns.
func TestPrintSummary_ShowsEveryRegisteredEndpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an etcd and three service processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	m, _ := startMixedMesh(t, ctx)

	var buf bytes.Buffer
	m.PrintSummary(&buf)
	summary := buf.String()
	rows := map[string][]string{} // instance ID: its row's fields
	var header string
	inTable := false
	for _, l := range strings.Split(summary, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) > 0 && f[0] == "SERVICE":
			header, inTable = strings.Join(f, " "), true
		case inTable && len(f) == 0:
			inTable = false // the table ends at the first blank line after it
		case inTable:
			rows[f[1]] = f
		}
		if inTable && len(l) > 100 {
			t.Errorf("table line of %d columns, want at most 100: %q", len(l), l)
		}
	}
	if want := "SERVICE INSTANCE HTTP GRPC ZONE STATE METRICS"; header != want {
		t.Errorf("table header %q, want %q\n%s", header, want, summary)
	}
	for _, in := range m.Instances() {
		row := rows[in.ID()]
		if len(row) != 7 {
			t.Errorf("%s: row %q, want the 7 columns SERVICE INSTANCE HTTP GRPC ZONE STATE METRICS\n%s", in.ID(), row, summary)
			continue
		}
		wantHTTP, wantGRPC := "-", "-"
		if ep, ok := in.Registered.Endpoint("http"); ok {
			wantHTTP = strings.TrimPrefix(ep, "http://")
		}
		if ep, ok := in.Registered.Endpoint("grpc"); ok {
			wantGRPC = strings.TrimPrefix(ep, "grpc://")
		}
		if in.Service != "http" && wantGRPC == "-" {
			t.Fatalf("%s registered no grpc endpoint: %v", in.ID(), in.Registered.Endpoints)
		}
		if in.Service != "grpc" && wantHTTP == "-" {
			t.Fatalf("%s registered no http endpoint: %v", in.ID(), in.Registered.Endpoints)
		}
		if row[2] != wantHTTP || row[3] != wantGRPC || row[5] != "ready" {
			t.Errorf("%s: HTTP %q, GRPC %q, STATE %q; want %q, %q, ready (it registered %v)\n%s",
				in.ID(), row[2], row[3], row[5], wantHTTP, wantGRPC, in.Registered.Endpoints, summary)
		}
	}
}
