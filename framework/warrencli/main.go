// Package warrencli is the `warren` command — the operator's tool for a
// Warren mesh — as a library, so a module with registry backends of its
// own builds a warren that speaks them: its cmd/warren/main.go is
//
//	func main() { warrencli.Main(hreg.Backend(), etcd.Backend()) }
//
// (Warren's own cmd/warren lists etcd, Consul, ZooKeeper and Kubernetes.)
// Each subcommand is one entry of the table in commands(); its logic lives
// in a package (internal/…), its file here only wires it.
//
//	warren ls [SERVICE...]    instances in discovery, as a table
//	warren watch SERVICE...   discovery changes, as a stream
//	warren page               the live mesh page, read-only
//	warren nginx              nginx upstreams that follow discovery
//	warren xds                an xDS control plane that follows discovery
//
// Registry subcommands take the flags and WARREN_* variables services
// take: --registry (the first backend given is its default) and the
// backend's own (--etcd-endpoints, --consul-addr…).
package warrencli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/regcli"
	"github.com/warren-mesh/warren/internal/stopsig"
)

// command is one subcommand. run returns nil, flag.ErrHelp, a
// regcli.Usage (exit 2), a regcli.NoInstance (exit 3) or another error
// (exit 1).
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

// Main runs warren with os.Args and the registry backends given (the
// first is the default of --registry), and exits with its code. SIGINT,
// SIGTERM and SIGHUP end a running command in order (a long-running one,
// nginx or xds, then says which signal stopped it); a second signal exits
// at once, unless it comes within stopsig.Window (one second) of the
// first: that is the first delivered twice (timeout(1) signals the child,
// then its process group), and exiting at once would cut the requests
// the edge's nginx is still serving.
func Main(backends ...registry.Backend) {
	os.Exit(runSignalled(os.Args[1:], commands(), backends, stopsig.Window))
}

// runSignalled is Main without the exit of its normal path: it runs args
// from cmds until they end or a stop signal cancels them, and exits at
// once (status 1) on a second signal window or more after the first.
func runSignalled(args []string, cmds []command, backends registry.Backends, window time.Duration) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, stopsig.Signals()...) // a SIGHUP ignored under nohup stays ignored
	defer signal.Stop(sigs)
	w := stopsig.Watch(sigs, window, func(sig os.Signal) {
		fmt.Fprintf(os.Stderr, "warren: %v again within %v of the first, taken as the same signal; send another to exit at once\n", sig, window)
	})
	defer w.Close()
	done, exited := make(chan struct{}), make(chan struct{})
	go func() { // owned by runSignalled: ends with done
		defer close(exited)
		select {
		case <-w.Stop():
		case <-done:
			return
		}
		if sig := w.First(); sig != os.Interrupt {
			fmt.Fprintf(os.Stderr, "warren: %v received; stopping\n", sig)
		}
		cancel()
		select {
		case <-w.Force():
			fmt.Fprintf(os.Stderr, "warren: second signal (%v); exiting at once\n", w.ForcedBy())
			os.Exit(1)
		case <-done:
		}
	}()
	code := dispatch(ctx, cmds, args, os.Stdout, os.Stderr, backends)
	close(done)
	<-exited
	return code
}

// Run is Main without the signals and the exit: it runs the command args
// names with backends and returns the exit code (0, 1 for an error, 2 for
// a bad command line, 3 when `ls` read a service named on its command
// line and it has no instance).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, backends registry.Backends) int {
	return dispatch(ctx, commands(), args, stdout, stderr, backends)
}

// dispatch is Run with the command table given.
func dispatch(ctx context.Context, cmds []command, args []string, stdout, stderr io.Writer, backends registry.Backends) int {
	// Help asked for goes to stdout (exit 0), so it can be piped; usage
	// printed because of a mistake goes to stderr (exit 2).
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	for _, c := range cmds {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, regcli.Env{Stdout: stdout, Stderr: stderr, Backends: backends}, args[1:])
		var u regcli.Usage
		var none regcli.NoInstance
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &u):
			fmt.Fprintf(stderr, "warren %s: %v (warren %s -h for help)\n", c.name, err, c.name)
			return 2
		case errors.As(err, &none):
			fmt.Fprintf(stderr, "warren %s: %v\n", c.name, err)
			return 3
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
