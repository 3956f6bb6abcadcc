package user

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	"github.com/warren-mesh/warren/framework/grpcresolver"
	"github.com/warren-mesh/warren/services/user/userpb"
)

// protocCaller is a program of its own module that knows the service only
// by the stubs protoc generated from userpb/user.proto: what a caller in
// another repository (or, with its own protoc plugin, another language)
// has.
const protocCaller = `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"example.com/caller/userpb"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cc, err := grpc.NewClient("passthrough:///"+os.Args[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	c := userpb.NewUserServiceClient(cc)
	u, err := c.Create(ctx, &userpb.CreateRequest{Name: "Ada Lovelace", Email: "ada@example.com"})
	if err != nil {
		panic(err)
	}
	got, err := c.Get(ctx, &userpb.GetRequest{Id: u.GetId()})
	if err != nil {
		panic(err)
	}
	fmt.Printf("answered %s %q %s\n", got.GetId(), got.GetName(), got.GetCreated().AsTime().Format(time.RFC3339))
}
`

// tool finds a protoc tool in the repository's bin/ (make protoc) or on
// PATH.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := filepath.Abs(filepath.Join("..", "..", "bin", name)); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in bin/ or on PATH: run `make protoc` (make test does)", name)
	}
	return p
}

// The committed .proto, compiled by protoc into a separate module with
// stubs of its own, calls the running service: the file is a complete
// description of the API for any caller.
func TestProto_CompilesWithProtocAndTheServiceAnswersItsStubs(t *testing.T) {
	protoc, genGo, genGRPC := tool(t, "protoc"), tool(t, "protoc-gen-go"), tool(t, "protoc-gen-go-grpc")
	startGRPCApp(t, regs.Open(t, "etcd"), "user-proto", NewMemoryStore())
	addr := grpcAddr(t)

	dir := t.TempDir()
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	const m = "Muserpb/user.proto=example.com/caller/userpb"
	src, err := filepath.Abs(".") // services/user: the .proto's root
	if err != nil {
		t.Fatal(err)
	}
	run(nil, protoc, "-I", src, "--plugin=protoc-gen-go="+genGo, "--plugin=protoc-gen-go-grpc="+genGRPC,
		"--go_out="+dir, "--go_opt=module=example.com/caller", "--go_opt="+m,
		"--go-grpc_out="+dir, "--go-grpc_opt=module=example.com/caller", "--go-grpc_opt="+m,
		"userpb/user.proto")
	for _, fn := range []string{"userpb/user.pb.go", "userpb/user_grpc.pb.go"} {
		if _, err := os.Stat(filepath.Join(dir, fn)); err != nil {
			t.Fatalf("protoc wrote no %s: %v", fn, err)
		}
	}
	// The module requires what this repository requires, at the same
	// versions, so the build uses the module cache only (the repository's
	// go.sum has their hashes); the caller imports grpc and protobuf.
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(mod), "\n")
	write(t, filepath.Join(dir, "go.mod"), "module example.com/caller\n"+rest)
	sum, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "go.sum"), string(sum))
	write(t, filepath.Join(dir, "main.go"), protocCaller)
	offline := []string{"GOPROXY=off", "GOTOOLCHAIN=local", "GOFLAGS=-mod=readonly", "GOWORK=off"}
	out := run(offline, "go", "run", ".", addr)
	if !strings.HasPrefix(out, "answered u-") || !strings.Contains(out, `"Ada Lovelace"`) {
		t.Fatalf("the caller built from the .proto printed %q; want the service's answer", out)
	}
}

// grpcAddr is the host:port of the one grpc:// endpoint of user in etcd,
// read the way any grpc-go client would: through warren:///user.
func grpcAddr(t *testing.T) string {
	t.Helper()
	b, err := grpcresolver.NewBuilder(regs.Open(t, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient("warren:///"+ServiceName, grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p peer.Peer
	_, err = userpb.NewUserServiceClient(cc).Get(ctx, &userpb.GetRequest{Id: "nobody"}, grpc.WaitForReady(true), grpc.Peer(&p))
	if p.Addr == nil {
		t.Fatalf("no user instance reachable over gRPC: %v", err)
	}
	return p.Addr.String()
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
