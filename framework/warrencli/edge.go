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
		if services, err = listServices(ctx, cat, logger); err != nil {
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

// listWarnEvery is how often listServices repeats that it still waits.
const listWarnEvery = 30 * time.Second

// listServices asks the registry for its services, and while it does not
// answer (an attempt runs out of unlistedCheckTime: etcd down, whose
// client waits for a connection) says so and asks again until ctx ends:
// an edge started during an outage waited in silence. An error the
// registry gives before that (refused credentials, Consul down) ends it.
func listServices(ctx context.Context, cat registry.Catalog, logger log.Logger) ([]string, error) {
	var warned time.Time
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		actx, cancel := context.WithTimeout(ctx, unlistedCheckTime)
		services, err := cat.Services(actx)
		timedOut := actx.Err() != nil
		cancel()
		if err == nil {
			if !warned.IsZero() {
				level.Info(logger).Log("msg", "the registry answered; following the services it lists", "services", joinNames(services))
			}
			return services, nil
		}
		if ctx.Err() != nil || !timedOut {
			return nil, err
		}
		if time.Since(warned) >= listWarnEvery {
			level.Warn(logger).Log("msg", "the registry does not answer; waiting for it to list the services to follow (name them with --services to start without it)", "err", err)
			warned = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
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
