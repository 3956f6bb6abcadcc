// Package bootstrap is what a service's main needs and nothing more: read
// the configuration (flags and WARREN_* variables), build the logger and
// the registry the configuration names, let the service build its HTTP
// handler, and run the lifecycle. A generated main is one call:
//
//	func main() {
//		bootstrap.Main("payment", version, func(ctx context.Context, d *bootstrap.Deps) (http.Handler, error) {
//			svc := payment.New()
//			return payment.NewHTTPHandler(payment.MakeEndpoints(svc), d.Logger), nil
//		})
//	}
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-kit/log"
	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/app"
	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/consul"
	"github.com/warren-mesh/warren/framework/registry/etcd"
	"github.com/warren-mesh/warren/framework/registry/memory"
)

// Deps is what a service's build function gets.
type Deps struct {
	Config config.Config
	Logger log.Logger
	// Discovery finds other services (for typed clients).
	Discovery registry.Discovery
	// AppOptions are added to the lifecycle's options (readiness checks, a
	// watchdog setting, middleware).
	AppOptions []app.Option
}

// ClientOptions returns the client options the configuration implies: the
// logger and, with --snapshot-dir, the last-known-good snapshot.
func (d *Deps) ClientOptions() []client.Option {
	opts := []client.Option{client.WithLogger(d.Logger)}
	if d.Config.SnapshotDir != "" {
		opts = append(opts, client.WithSnapshot(d.Config.SnapshotDir))
	}
	return opts
}

// OnClose has c closed in the release phase, after in-flight requests
// drained and before the registration is released.
func (d *Deps) OnClose(c io.Closer) { d.AppOptions = append(d.AppOptions, app.WithCloser(c)) }

// BuildFunc builds the service's handler. The context ends when start-up
// is abandoned.
type BuildFunc func(ctx context.Context, d *Deps) (http.Handler, error)

// Main runs the service and exits: 0 after a clean shutdown or --help,
// 2 for bad configuration, 1 for anything else.
func Main(service, version string, build BuildFunc) {
	os.Exit(Run(context.Background(), service, version, os.Args[1:], os.Stderr, build))
}

// Run is Main without the exit, for tests and embedders; it returns the
// exit code. Logs go to logOut.
func Run(ctx context.Context, service, version string, args []string, logOut io.Writer, build BuildFunc) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, service, version, args[1:], logOut)
	}
	cfg, err := config.Parse(service, version, args, logOut)
	switch {
	case errors.Is(err, config.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(logOut, "%s: %v\n", service, err)
		return 2
	}
	logger := cfg.Logger(logOut)
	if err := run(ctx, cfg, logger, build); err != nil {
		level.Error(logger).Log("svc", service, "msg", "exit", "err", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, cfg config.Config, logger log.Logger, build BuildFunc) error {
	reg, err := OpenRegistry(ctx, cfg, logger)
	if err != nil {
		return err
	}
	deps := &Deps{Config: cfg, Logger: log.With(logger, "svc", cfg.Service), Discovery: reg}
	h, err := build(ctx, deps)
	if err != nil {
		reg.Close()
		return fmt.Errorf("build %s: %w", cfg.Service, err)
	}
	opts := append(cfg.AppOptions(logger), deps.AppOptions...)
	a, err := app.New(cfg.Service, h, reg, opts...)
	if err != nil {
		reg.Close()
		return err
	}
	return a.Run(ctx)
}

// healthcheck is `SERVICE healthcheck [flags]`: GET /readyz on the
// configured listen port of this host, exit 0 when ready. Container images
// without a shell or curl use it as their HEALTHCHECK.
func healthcheck(ctx context.Context, service, version string, args []string, out io.Writer) int {
	cfg, err := config.Parse(service, version, args, out)
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 2
	}
	_, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil || port == "0" {
		fmt.Fprintf(out, "%s healthcheck: --listen %q has no fixed port to probe\n", service, cfg.Listen)
		return 2
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/readyz", nil)
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(out, "%s healthcheck: %v\n", service, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(out, "%s healthcheck: not ready: %s %s\n", service, resp.Status, body)
		return 1
	}
	return 0
}

// OpenRegistry connects to the registry cfg names.
func OpenRegistry(ctx context.Context, cfg config.Config, logger log.Logger) (registry.Registry, error) {
	logger = log.With(logger, "svc", cfg.Service, "registry", cfg.Registry)
	switch cfg.Registry {
	case "memory":
		return memory.New(), nil
	case "etcd":
		opts := []etcd.Option{
			etcd.WithEndpoints(cfg.EtcdEndpoints...),
			etcd.WithPrefix(cfg.EtcdPrefix),
			etcd.WithTTL(cfg.EtcdTTL),
			etcd.WithDialTimeout(cfg.EtcdDialTimeout),
			etcd.WithLogger(logger),
		}
		if cfg.EtcdCA != "" || cfg.EtcdCert != "" {
			opts = append(opts, etcd.WithTLSFiles(cfg.EtcdCA, cfg.EtcdCert, cfg.EtcdKey))
		}
		if cfg.EtcdUsername != "" {
			opts = append(opts, etcd.WithAuth(cfg.EtcdUsername, cfg.EtcdPassword))
		}
		r, err := etcd.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("etcd registry at %v: %w", cfg.EtcdEndpoints, err)
		}
		return r, nil
	case "consul":
		opts := []consul.Option{
			consul.WithAddress(cfg.ConsulAddr),
			consul.WithLogger(logger),
		}
		if cfg.ConsulToken != "" {
			opts = append(opts, consul.WithToken(cfg.ConsulToken))
		}
		if cfg.ConsulDatacenter != "" {
			opts = append(opts, consul.WithDatacenter(cfg.ConsulDatacenter))
		}
		if cfg.ConsulCA != "" || cfg.ConsulCert != "" {
			opts = append(opts, consul.WithScheme("https"), consul.WithTLS(consul.TLSConfig{CAFile: cfg.ConsulCA, CertFile: cfg.ConsulCert, KeyFile: cfg.ConsulKey}))
		}
		if cfg.ConsulCheck == "http" {
			opts = append(opts, consul.WithHTTPCheck(cfg.ConsulTTL, cfg.ConsulTTL/2))
		} else {
			opts = append(opts, consul.WithTTLCheck(cfg.ConsulTTL))
		}
		r, err := consul.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("consul registry at %s: %w", cfg.ConsulAddr, err)
		}
		return r, nil
	}
	return nil, fmt.Errorf("unknown registry %q", cfg.Registry)
}
