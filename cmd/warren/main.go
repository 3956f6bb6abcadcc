// Command warren is the operator's tool for a Warren mesh. Each
// subcommand is one entry of the table in commands(); its logic lives in a
// package (internal/…), its file here only wires it.
//
//	warren ls [SERVICE...]    instances in discovery, as a table
//	warren watch SERVICE...   discovery changes, as a stream
//	warren page               the live mesh page, read-only
//	warren nginx              nginx upstreams that follow discovery
//	warren xds                an xDS control plane that follows discovery
//
// Registry subcommands take the flags and WARREN_* variables services
// take: --registry and the backend's own (--etcd-endpoints, --consul-addr…).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/warren-mesh/warren/internal/regcli"
)

// command is one subcommand. run returns nil, flag.ErrHelp, a
// regcli.Usage (exit 2) or another error (exit 1).
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env regcli.Env, args []string) error
}

// commands is the subcommand table: each group of subcommands has its own
// file with a func returning its entries; add a group here.
func commands() []command {
	return append(registryCommands(), edgeCommands()...)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the exit: the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, regcli.Env{Stdout: stdout, Stderr: stderr, Backends: backends()}, args[1:])
		var u regcli.Usage
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &u):
			fmt.Fprintf(stderr, "warren %s: %v (warren %s -h for help)\n", c.name, err, c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "warren %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "warren: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: warren COMMAND [flags] [arguments]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n", c.summary)
	}
	fmt.Fprintln(w, "\nwarren COMMAND -h lists a command's flags.")
}
