// Command meshup runs the demo mesh: `make up` (embedded etcd) or
// `make up REGISTRY=consul`. It builds every service under services/,
// starts two instances of each, prints where they are and how to call
// them, and on Ctrl-C stops everything in order.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/framework/registry/consul/consuldev"
	"github.com/warren-mesh/warren/framework/registry/etcd/etcddev"
)

func main() {
	reg := flag.String("registry", envOr("REGISTRY", "etcd"), "registry: etcd (embedded) or consul (bin/consul or PATH)")
	n := flag.Int("instances", 2, "instances per service")
	flag.Parse()

	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	start := time.Now()
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root:     root,
		Registry: *reg,
		// The registries `make up` can run; add a backend's dev server here.
		Backends:  []devmesh.Backend{etcddev.Backend(), consuldev.Backend()},
		Instances: *n,
		Out:       os.Stdout,
		Color:     isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		os.Exit(1)
	}
	m.PrintSummary(os.Stdout)
	fmt.Printf("(up in %s)\n\n", time.Since(start).Round(100*time.Millisecond))

	<-ctx.Done()
	stop() // a second Ctrl-C now kills the launcher (and, by Pdeathsig, the services)
	fmt.Println()
	if err := m.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
