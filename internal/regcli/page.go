package regcli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/httptransport"
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
	var hosts []string
	fs.Var(registry.ListFlag{P: &hosts}, "page-allowed-hosts", "comma-separated names the page also answers to (it answers IP addresses, localhost and --page-listen's host; other Host headers get 421, against DNS rebinding)")
	var tlsFlags config.TLSClient
	config.BindTLSClient(fs, &tlsFlags) // to probe https instances: a private CA, mTLS
	probe := fs.Duration("probe-every", 2*time.Second, "how often each instance's /readyz and /metrics are read")
	window := fs.Duration("window", 10*time.Second, "span of the request rates and latency quantiles")
	if err := Parse(fs, args, env.Stdout, "Usage: warren page [flags] [SERVICE...]\n\nServes a live page of the mesh: every service the registry lists (and the SERVICEs named),\nits instances, their readiness, traffic and callers' client state. It only reads."); err != nil {
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
	for _, h := range hosts {
		if err := httptransport.CheckAllowedHost(h); err != nil {
			return usagef("--page-allowed-hosts: %v", err)
		}
	}
	if h, _, err := net.SplitHostPort(*listen); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	viewOpts := []meshview.Option{meshview.WithRegistryName(reg.Name()), meshview.WithServices(fs.Args()...),
		meshview.WithProbeEvery(*probe), meshview.WithWindow(*window)}
	tlsCfg, err := tlsFlags.Config()
	if err != nil {
		return usagef("%v", err)
	}
	if tlsCfg != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tlsCfg
		viewOpts = append(viewOpts, meshview.WithHTTPClient(&http.Client{Timeout: meshview.ProbeTimeout, Transport: tr}))
	}
	r, err := reg.Open(ctx)
	if err != nil {
		return err // names the backend
	}
	defer r.Close()
	v, err := meshview.New(r, viewOpts...)
	if err != nil {
		return usagef("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "mesh page of %s: http://%s/ (Ctrl-C ends)\n", reg.Name(), ln.Addr())
	return meshview.Serve(ctx, ln, v, meshview.WithAllowedHosts(hosts...))
}
