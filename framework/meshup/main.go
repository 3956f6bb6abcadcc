// Package meshup is the dev mesh launcher behind `make up` as a library: it
// starts a throwaway registry server, builds every service under
// services/, starts two instances of each service on it, prints where
// they are and how to call them (with the live mesh page, and an edge
// proxy on request), and on Ctrl-C stops everything in order. A module
// with a registry backend of its own runs it from its cmd/meshup/main.go,
// listing that backend's dev server:
//
//	func main() { meshup.Main(hregdev.Backend(), etcddev.Backend()) }
//
// (Warren's own cmd/meshup lists etcd, Consul and ZooKeeper.)
package meshup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/warren-mesh/warren/framework/devmesh"
	"github.com/warren-mesh/warren/internal/stopsig"
)

// Main runs the launcher with the command line's flags and the registries
// it can run (the first is the default of -registry and REGISTRY), and
// exits with its code.
func Main(backends ...devmesh.Backend) {
	var names []string
	for _, b := range backends {
		names = append(names, b.Registry.Name)
	}
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "meshup: no registry backend given to meshup.Main")
		os.Exit(2)
	}
	f, code := parseFlags(os.Args[1:], names, os.Stdout, os.Stderr)
	if code >= 0 {
		os.Exit(code)
	}
	// Checked before anything is built: a misspelt name used to cost the
	// whole build first (report j48b).
	if !slices.Contains(names, f.registry) {
		fmt.Fprintf(os.Stderr, "meshup: -registry %q: want one of %s\n", f.registry, strings.Join(names, ", "))
		os.Exit(2)
	}
	if err := checkInstances(f.instances); err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		os.Exit(2)
	}
	os.Exit(run(f.registry, f.instances, f.state, f.page, f.edge, backends))
}

// flags are the launcher's command line.
type flags struct {
	registry          string
	instances         int
	state, page, edge string
}

// parseFlags reads args; code is -1 to go on, else the exit code. -h
// prints the flags to stdout (0), so `meshup -h | grep page` filters them;
// a bad flag prints the error and the flags to stderr (2).
func parseFlags(args, names []string, stdout, stderr io.Writer) (f flags, code int) {
	fs := flag.NewFlagSet("meshup", flag.ContinueOnError)
	fs.StringVar(&f.registry, "registry", envOr("REGISTRY", names[0]), "registry the mesh runs a dev server of: "+strings.Join(names, ", "))
	fs.IntVar(&f.instances, "instances", 2, "instances per service")
	fs.StringVar(&f.state, "state", "", "state directory (registry data, demo data, binaries); default ./.warren. One mesh per directory")
	fs.StringVar(&f.page, "page", envOrEmpty("MESH_PAGE", "127.0.0.1:7070"), "address of the live mesh page (docs/mesh-page.md); a free port when taken; empty: no page")
	fs.StringVar(&f.edge, "edge", envOr("EDGE", ""), "a proxy in front of the mesh that follows discovery: nginx (Debian nginx-light; docs/edge.md); empty: none")
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "Usage of meshup:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return f, 0
	case err != nil:
		fmt.Fprintln(stderr, err)
		usage(stderr)
		return f, 2
	}
	return f, -1
}

// maxInstances bounds -instances: every instance is a process of its own
// (~50 MB resident), all on this machine; -instances 100000 once forked
// until the machine stood still (report j53d).
const maxInstances = 64

// checkInstances refuses an -instances the dev mesh cannot run; 0 and
// negative numbers used to become the default 2 silently.
func checkInstances(n int) error {
	if n < 1 || n > maxInstances {
		return fmt.Errorf("-instances %d: want 1 to %d instances per service (each is a process of its own on this machine, ~50 MB resident)", n, maxInstances)
	}
	return nil
}

// run is main without os.Exit, so the terminal is given back on every
// path.
func run(reg string, n int, state, page, edgeKind string, backends []devmesh.Backend) int {
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		return 1
	}
	restore := foreground()
	defer restore()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, stopsig.Signals()...)
	defer signal.Stop(sigs)
	if err := stopWithParent(); err != nil {
		fmt.Fprintln(os.Stderr, "meshup: cannot follow the parent process (the mesh will outlive it):", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := stopsig.Watch(sigs, stopsig.Window, nil)
	defer w.Close()
	done := make(chan struct{})
	defer close(done)
	// Owned by run (ends with done): the first signal stops the mesh, a
	// second one ends the launcher.
	go followSignals(w, done, cancel, func() {
		fmt.Fprintln(os.Stderr, "\nmeshup: second signal, killing the services")
		restore()
		os.Exit(130) // the services die with the launcher (Pdeathsig)
	})

	start := time.Now()
	m, err := devmesh.Start(ctx, devmesh.Config{
		Root:      root,
		Registry:  reg,
		Backends:  backends,
		Instances: n,
		StateDir:  state,
		Out:       os.Stdout,
		Color:     isTerminal(os.Stdout) && os.Getenv("NO_COLOR") == "",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		return 1
	}
	pageURL, stopPage := "", func() {}
	if page != "" {
		if pageURL, stopPage, err = startPage(ctx, m, reg, page); err != nil {
			fmt.Fprintln(os.Stderr, "meshup:", err)
			m.Stop()
			return 1
		}
	}
	edgeURL, stopEdge := "", func() {}
	if edgeKind != "" {
		dir := state
		if dir == "" {
			dir = filepath.Join(root, ".warren")
		}
		if edgeURL, stopEdge, err = startEdge(ctx, m, edgeKind, dir, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "meshup:", err)
			stopPage()
			m.Stop()
			return 1
		}
	}
	m.PrintSummary(os.Stdout)
	if edgeURL != "" {
		fmt.Printf("Edge (%s in front of the mesh, following discovery): %s  (%s/NAME/… reaches service NAME)\n", edgeKind, edgeURL, edgeURL)
	}
	if pageURL != "" {
		fmt.Printf("Mesh page (live: instances, readiness, traffic, client state, discovery events): %s\n", pageURL)
	}
	fmt.Printf("(up in %s)\n\n", time.Since(start).Round(100*time.Millisecond))

	<-ctx.Done()
	stopEdge() // before the mesh stops: it reads discovery through the mesh's client
	stopPage() // before the mesh stops: its registry client goes with it
	fmt.Println()
	if err := m.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "meshup:", err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// envOrEmpty is envOr for a variable whose empty value means something:
// MESH_PAGE= turns the page off (docs/mesh-page.md), so only an unset
// variable takes the default.
func envOrEmpty(k, def string) string {
	if v, ok := os.LookupEnv(k); ok {
		return v
	}
	return def
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
