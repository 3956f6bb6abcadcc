package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The demo mesh serves gRPC too: the summary's gRPC line (cmd/usergrpc,
// no grpcurl) reads a user created over HTTP, and an order instance
// started with --user-grpc (WARREN_USER_GRPC) places orders, calling user
// over gRPC.
func TestMesh_GRPCLineOfTheSummaryAndOrderCallingUserOverGRPC(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole mesh")
	}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	root := moduleRoot(t)
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root: root, StateDir: t.TempDir(), Out: out, TTL: 3 * time.Second,
		Backends: []devmesh.Backend{etcddev.Backend()},
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	defer func() {
		m.Stop()
		if t.Failed() {
			t.Logf("mesh output:\n%s", out)
		}
	}()
	for _, in := range m.Instances() {
		if _, ok := in.Registered.Endpoint("grpc"); !ok && (in.Service == "user" || in.Service == "order") {
			t.Fatalf("%s publishes no grpc endpoint: %v", in.ID(), in.Registered.Endpoints)
		}
	}
	var summary bytes.Buffer
	m.PrintSummary(&summary)
	var line string
	for _, l := range strings.Split(summary.String(), "\n") {
		if strings.Contains(l, "go run ./cmd/usergrpc get") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" {
		t.Fatalf("summary has no gRPC line:\n%s", summary.String())
	}

	userURL, _ := m.Instance("user", 1).Registered.Endpoint("http")
	var u struct{ ID, Name string }
	if st := post(t, userURL+"/users", `{"name":"Ada Lovelace","email":"ada@example.com"}`, &u); st != 201 || u.ID == "" {
		t.Fatalf("create user: %d %+v", st, u)
	}

	// The printed line, as a shell would run it: VAR=value… go run ./cmd/usergrpc get "$USER_ID".
	env, _, ok := strings.Cut(line, " go run ./cmd/usergrpc")
	if !ok {
		t.Fatalf("unexpected gRPC line %q", line)
	}
	bin := filepath.Join(t.TempDir(), "usergrpc")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/usergrpc")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/usergrpc: %v\n%s", err, b)
	}
	cmd := exec.CommandContext(ctx, bin, "get", u.ID)
	cmd.Env = append(cmd.Environ(), strings.Fields(env)...)
	got, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(got), `"name":"Ada Lovelace"`) || !strings.Contains(string(got), u.ID) {
		t.Fatalf("%s: %s, %v; want the user as JSON", line, got, err)
	}

	// order with one flag calls user over gRPC.
	o3, err := m.StartInstance("order", devmesh.InstanceOptions{Env: []string{"WARREN_USER_GRPC=true"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitReady(ctx, o3); err != nil {
		t.Fatal(err)
	}
	orderURL, _ := o3.Registered.Endpoint("http")
	for i := range 10 {
		var o struct {
			UserName string `json:"user_name"`
		}
		body := fmt.Sprintf(`{"user_id":%q,"items":[{"sku":"book","quantity":1,"price_cents":100}]}`, u.ID)
		if st := post(t, orderURL+"/orders", body, &o); st != 201 || o.UserName != "Ada Lovelace" {
			t.Fatalf("order %d through order-3 (user over gRPC): %d %+v", i, st, o)
		}
	}
	var e struct{ Code string }
	if st := post(t, orderURL+"/orders", `{"user_id":"u-nobody","items":[{"sku":"a","quantity":1}]}`, &e); st != 422 || e.Code != "unknown_user" {
		t.Fatalf("unknown user through gRPC: %d %+v (user's not-found must read as such across gRPC)", st, e)
	}
}
