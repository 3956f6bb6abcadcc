package regcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/meshview"
)

// PageUsage is `warren page`'s one-line summary.
const PageUsage = "page             serve the live mesh page for a registry, read-only (docs/mesh-page.md)"

// Page is `warren page [flags] [SERVICE...]`: the mesh page of any
// registry, read-only, until ctx ends.
func Page(ctx context.Context, env Env, args []string) error {
	fs := flag.NewFlagSet("warren page", flag.ContinueOnError)
	reg, err := BindRegistry(fs, env.Backends)
	if err != nil {
		return err
	}
	listen := fs.String("page-listen", "127.0.0.1:7070", "address the page is served on (keep it on loopback or an admin network)")
	probe := fs.Duration("probe-every", 2*time.Second, "how often each instance's /readyz and /metrics are read")
	window := fs.Duration("window", 10*time.Second, "span of the request rates and latency quantiles")
	if err := Parse(fs, args, env.Stderr, "Usage: warren page [flags] [SERVICE...]\n\nServes a live page of the mesh: every service the registry lists (and the SERVICEs named),\nits instances, their readiness, traffic and callers' client state. It only reads."); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	for _, s := range fs.Args() {
		if !registry.ValidName(s) {
			return usagef("service %q: want a lower-case DNS label (letters, digits, dashes)", s)
		}
	}
	r, err := reg.Open(ctx)
	if err != nil {
		return err // names the backend
	}
	defer r.Close()
	v, err := meshview.New(r, meshview.WithRegistryName(reg.Name()), meshview.WithServices(fs.Args()...),
		meshview.WithProbeEvery(*probe), meshview.WithWindow(*window))
	if err != nil {
		return usagef("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "mesh page of %s: http://%s/ (Ctrl-C ends)\n", reg.Name(), ln.Addr())
	return meshview.Serve(ctx, ln, v)
}
