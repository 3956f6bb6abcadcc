package warrencli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/regcli"
)

// edgeCommands keep proxies in front of the mesh in step with discovery
// (framework/edge; docs/edge.md).
func edgeCommands() []command {
	return []command{
		{"nginx", "nginx [flags]    nginx upstreams that follow discovery (your nginx, or one warren runs)", runNginx},
		{"xds", "xds [flags]      an xDS control plane for Envoy and proxyless gRPC, following discovery", runXDS},
	}
}

// edgeFlags are what every edge command takes besides its own flags.
type edgeFlags struct {
	reg      *regcli.Registry
	services []string
	logLevel string
}

func bindEdge(fs *flag.FlagSet, env regcli.Env) (*edgeFlags, error) {
	reg, err := regcli.BindRegistry(fs, env.Backends)
	if err != nil {
		return nil, err
	}
	e := &edgeFlags{reg: reg}
	fs.Var(registry.ListFlag{P: &e.services}, "services", "services to follow, comma-separated (default: every service the registry lists at start, where the backend can list them)")
	fs.StringVar(&e.logLevel, "log-level", "info", "debug, info, warn or error")
	return e, nil
}

// parseEdge parses the command line; a bad one is a regcli.Usage (exit 2).
func parseEdge(fs *flag.FlagSet, args []string, env regcli.Env, usage string) error {
	if err := regcli.Parse(fs, args, env.Stderr, usage); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return regcli.Usage{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return regcli.Usage{Msg: fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return nil
}

// logger writes logfmt to stderr at the chosen level.
func (e *edgeFlags) logger(stderr io.Writer) (log.Logger, error) {
	lv := map[string]level.Option{"debug": level.AllowDebug(), "info": level.AllowInfo(), "warn": level.AllowWarn(), "error": level.AllowError()}[e.logLevel]
	if lv == nil {
		return nil, regcli.Usage{Msg: fmt.Sprintf("--log-level %q: want debug, info, warn or error", e.logLevel)}
	}
	l := log.NewLogfmtLogger(log.NewSyncWriter(stderr))
	return level.NewFilter(log.With(l, "ts", log.DefaultTimestampUTC), lv), nil
}

// open opens the registry and settles the service list: --services as
// given (each a valid name), else every service the registry lists.
func (e *edgeFlags) open(ctx context.Context) (registry.Registry, []string, error) {
	for _, s := range e.services {
		if !registry.ValidName(s) {
			return nil, nil, regcli.Usage{Msg: fmt.Sprintf("--services: %q is not a service name (a lower-case DNS label)", s)}
		}
	}
	r, err := e.reg.Open(ctx)
	if err != nil {
		return nil, nil, err // names the backend
	}
	services := e.services
	if len(services) == 0 {
		cat, ok := r.(registry.Catalog)
		if !ok {
			r.Close()
			return nil, nil, regcli.Usage{Msg: fmt.Sprintf("the %s backend cannot list its services: name them with --services", e.reg.Name())}
		}
		if services, err = cat.Services(ctx); err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("list services: %w", err)
		}
		if len(services) == 0 {
			r.Close()
			return nil, nil, errors.New("the registry lists no service yet: name them with --services")
		}
	}
	return r, services, nil
}

func joinNames(s []string) string { return strings.Join(s, ",") }
