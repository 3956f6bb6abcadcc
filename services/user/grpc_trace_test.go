package user

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warren-mesh/warren/framework/bootstrap"
	"github.com/warren-mesh/warren/framework/registry/memory"
	"github.com/warren-mesh/warren/framework/transport/grpcserver"
	"github.com/warren-mesh/warren/internal/spanlog"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// The generated NewTransports and NewGRPCClient, wired by bootstrap as
// the service's main wires them (--trace-stdout), make a call over gRPC
// one trace: the generated client's call span, its attempt's span, and the
// server's span, whose parent crossed in the metadata.
func TestGRPC_GeneratedTransportsTraceACallEndToEnd(t *testing.T) {
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	ready := make(chan *bootstrap.Deps, 1)
	args := []string{"--registry", "memory", "--listen", "127.0.0.1:0", "--grace", "0s", "--trace-stdout"}
	go func() {
		done <- bootstrap.Run(ctx, ServiceName, "1", args, out, func(_ context.Context, d *bootstrap.Deps) (bootstrap.Transports, error) {
			ready <- d
			return NewTransports(d, MakeEndpoints(New(NewMemoryStore())), grpcserver.Settings{Listen: "127.0.0.1:0"})
		}, bootstrap.WithRegistries(memory.Backend()))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("exit code %d\n%s", code, out)
			}
		case <-time.After(30 * time.Second):
			t.Error("did not stop within 30s")
		}
	})
	var d *bootstrap.Deps
	select {
	case d = <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("not built within 30s\n%s", out)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "phase=run"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not running within 30s\n%s", out)
		}
	}

	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	users, err := NewGRPCClient(cctx, d.Discovery, d.ClientOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	defer users.Close()
	if _, err := users.List(cctx, ListRequest{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	spanlog.WaitChain(t, out.String, "user.List", "call user.v1.UserService/List", "user.v1.UserService/List")
}
