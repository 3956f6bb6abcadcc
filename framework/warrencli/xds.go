package warrencli

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/xds"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/internal/regcli"
)

const xdsUsage = `Usage: warren xds [flags]

Serves every listed service over xDS (ADS: LDS, RDS, CDS, EDS) to Envoy
and to proxyless gRPC clients (target xds:///NAME), following discovery:
zones are localities, instance weights are endpoint weights.`

// runXDS is `warren xds` (docs/edge.md, "xDS").
func runXDS(ctx context.Context, env regcli.Env, args []string) error {
	fs := flag.NewFlagSet("warren xds", flag.ContinueOnError)
	ef, err := bindEdge(fs, env)
	if err != nil {
		return err
	}
	grpcSchemes, envoySchemes := []string{"grpc"}, []string{"http"}
	listen := fs.String("listen", "127.0.0.1:18000", "the xDS (ADS) gRPC listener")
	fs.Var(registry.ListFlag{P: &grpcSchemes}, "grpc-schemes", "endpoint schemes proxyless gRPC clients are sent to, in order of preference")
	fs.Var(registry.ListFlag{P: &envoySchemes}, "envoy-schemes", "endpoint schemes Envoy proxies to, in order of preference")
	envoyListen := fs.String("envoy-listen", "0.0.0.0:10000", "the HTTP listener served to Envoy nodes")
	envoyBootstrap := fs.String("envoy-bootstrap", "", "write an Envoy bootstrap pointing at --listen to this file")
	grpcBootstrap := fs.String("grpc-bootstrap", "", "write a grpc-go xDS bootstrap (for GRPC_XDS_BOOTSTRAP) pointing at --listen to this file")
	debounce := fs.Duration("debounce", 200*time.Millisecond, "how long discovery must stay quiet before a new snapshot")
	maxDelay := fs.Duration("max-delay", time.Second, "longest a change waits while changes keep coming")
	if err := parseEdge(fs, args, env, xdsUsage); err != nil {
		return err
	}
	logger, err := ef.logger(env.Stderr)
	if err != nil {
		return err
	}
	srv, err := xds.New(xds.WithGRPCSchemes(grpcSchemes...), xds.WithEnvoySchemes(envoySchemes...), xds.WithEnvoyListen(*envoyListen), xds.WithLogger(logger))
	if err != nil {
		return regcli.Usage{Msg: err.Error()}
	}
	defer srv.Stop()
	reg, services, err := ef.open(ctx, logger)
	if err != nil {
		return err
	}
	defer reg.Close()
	w, err := edge.NewWatcher(reg, services, edge.WithDebounce(*debounce), edge.WithMaxDelay(*maxDelay), edge.WithLogger(logger))
	if err != nil {
		return regcli.Usage{Msg: err.Error()}
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer lis.Close()
	bc := xds.BootstrapConfig{Server: lis.Addr().String()}
	for _, f := range []struct {
		path string
		gen  func(xds.BootstrapConfig) ([]byte, error)
	}{{*envoyBootstrap, xds.EnvoyBootstrap}, {*grpcBootstrap, xds.GRPCBootstrap}} {
		if f.path == "" {
			continue
		}
		b, err := f.gen(bc)
		if err == nil {
			err = os.WriteFile(f.path, b, 0o644)
		}
		if err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	served := make(chan error, 1)
	go func() { // owned by runXDS: ends with srv.Stop (deferred); a failed listener ends the watch
		err := srv.Serve(lis)
		served <- err
		cancel()
	}()
	fmt.Fprintf(env.Stdout, "xDS (ADS) serving on %s for %s: gRPC clients dial xds:///NAME\n", lis.Addr(), joinNames(services))
	err = w.Run(ctx, func(ctx context.Context, snap edge.Snapshot) error {
		published, err := srv.Sync(ctx, snap)
		if err != nil {
			return err
		}
		if !published {
			level.Debug(logger).Log("msg", "xds set unchanged; nothing published", "version", snap.Version, "instances", edge.Summary(snap))
			return nil
		}
		// "user=?": not listed yet, published without endpoints, so
		// clients keep the ones they had (edge.md).
		level.Info(logger).Log("msg", "xds snapshot applied", "version", snap.Version, "instances", edge.Summary(snap))
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case err := <-served:
		return err // the listener failed before the signal
	default:
		return nil
	}
}
