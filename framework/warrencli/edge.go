package warrencli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

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
	if err := regcli.Parse(fs, args, env.Stdout, usage); err != nil {
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
func (e *edgeFlags) open(ctx context.Context, logger log.Logger) (registry.Registry, []string, error) {
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
	} else {
		warnUnlisted(ctx, r, services, logger)
	}
	return r, services, nil
}

// unlistedCheckTime bounds the start-up look at the registry's service
// list: a registry that does not answer is the outage handling's business.
const unlistedCheckTime = 3 * time.Second

// warnUnlisted warns of each service named with --services that the
// registry does not list: a misspelt name is otherwise only a placeholder
// upstream answering 502 (report j48a). It is a warning, not an error: the
// service may simply not have started yet.
func warnUnlisted(ctx context.Context, r registry.Registry, services []string, logger log.Logger) {
	cat, ok := r.(registry.Catalog)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, unlistedCheckTime)
	defer cancel()
	listed, err := cat.Services(ctx)
	if err != nil {
		return
	}
	for _, s := range services {
		if !slices.Contains(listed, s) {
			level.Warn(logger).Log("msg", "the registry lists no instance of this service (misspelt, or not started yet); the edge sends it nowhere until one registers",
				"service", s, "listed", joinNames(listed))
		}
	}
}

func joinNames(s []string) string { return strings.Join(s, ",") }
