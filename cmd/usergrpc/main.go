// Command usergrpc calls the demo's user service over gRPC, no grpcurl
// needed: it finds the instances through the registry, as a service does
// (--registry and the backend's flags, or their WARREN_* variables; `make
// up` prints the line to paste), and calls them with the generated client
// (user.NewGRPCClient: Warren's balancer, retries and ejection).
//
//	usergrpc create NAME EMAIL
//	usergrpc get ID
//	usergrpc list
//
// The user service over TLS (grpcs://) takes the client half of the
// services' TLS flags: --tls-ca (a private mesh CA) and, when the mesh
// requires client certificates, --tls-cert and --tls-key (or their
// WARREN_TLS_* variables).
//
// The answer is printed as JSON; a service error exits 1 with its text.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/kubernetes"
	"github.com/warren-mesh/warren/framework/registry/zookeeper"
	"github.com/warren-mesh/warren/internal/regcli"
	"github.com/warren-mesh/warren/services/user"
)

const usage = "usage: usergrpc [flags] create NAME EMAIL | get ID | list"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("usergrpc", flag.ContinueOnError)
	reg, err := regcli.BindRegistry(fs, registry.Backends{etcd.Backend(), consul.Backend(), zookeeper.Backend(), kubernetes.Backend()})
	if err != nil {
		fmt.Fprintln(stderr, "usergrpc:", err)
		return 1
	}
	var tlsFlags config.TLSClient
	config.BindTLSClient(fs, &tlsFlags)
	if err := regcli.Parse(fs, args, stdout, usage); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "usergrpc: %v\n", err)
		return 2
	}
	tlsCfg, err := tlsFlags.Config()
	if err != nil {
		fmt.Fprintln(stderr, "usergrpc:", err)
		return 2
	}
	var opts []client.Option
	if tlsCfg != nil {
		opts = append(opts, client.WithTLS(tlsCfg))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := request(fs.Args())
	if err != nil {
		fmt.Fprintf(stderr, "usergrpc: %v\n%s\n", err, usage)
		return 2
	}
	r, err := reg.Open(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "usergrpc:", err)
		return 1
	}
	defer r.Close()
	users, err := user.NewGRPCClient(ctx, r, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "usergrpc:", err)
		return 1
	}
	defer users.Close()
	out, err := call(ctx, users)
	if err != nil {
		fmt.Fprintln(stderr, "usergrpc:", err)
		return 1
	}
	b, _ := json.Marshal(out)
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

// request turns the command line into one call of the client.
func request(args []string) (func(context.Context, *user.Client) (any, error), error) {
	switch {
	case len(args) == 3 && args[0] == "create":
		return func(ctx context.Context, c *user.Client) (any, error) {
			return c.Create(ctx, user.CreateRequest{Name: args[1], Email: args[2]})
		}, nil
	case len(args) == 2 && args[0] == "get":
		return func(ctx context.Context, c *user.Client) (any, error) {
			return c.Get(ctx, user.GetRequest{ID: args[1]})
		}, nil
	case len(args) == 1 && args[0] == "list":
		return func(ctx context.Context, c *user.Client) (any, error) { return c.List(ctx, user.ListRequest{}) }, nil
	}
	usage := map[string]string{"create": "create NAME EMAIL", "get": "get ID", "list": "list"}
	switch {
	case len(args) == 0:
		return nil, errors.New("no command: want create NAME EMAIL, get ID or list")
	case usage[args[0]] != "":
		return nil, fmt.Errorf("%s takes %d argument(s), got %d: want %s", args[0], len(strings.Fields(usage[args[0]]))-1, len(args)-1, usage[args[0]])
	}
	return nil, fmt.Errorf("unknown command %q: want create NAME EMAIL, get ID or list", args[0])
}
