package warrencli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-kit/log/level"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/framework/edge/nginx"
	"github.com/warren-mesh/warren/internal/regcli"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, "; ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

const nginxUsage = `Usage: warren nginx [flags]

Keeps one nginx upstream per service in step with discovery: renders the
upstreams file, checks it with nginx -t, reloads nginx, and keeps the last
good file when nginx refuses a new one. --out writes the file for your
nginx; --listen runs an nginx of warren's own in front of the mesh.`

// runNginx is `warren nginx` (docs/edge.md, "nginx").
func runNginx(ctx context.Context, env regcli.Env, args []string) error {
	fs := flag.NewFlagSet("warren nginx", flag.ContinueOnError)
	ef, err := bindEdge(fs, env)
	if err != nil {
		return err
	}
	var balance listFlag
	out := fs.String("out", "", "upstreams file to write (your nginx includes it inside http {}); not with --listen")
	tmpl := fs.String("template", "", "text/template file replacing the built-in upstreams template (docs/edge.md)")
	fs.Var(&balance, "balance", "balancing method: METHOD for every service or SERVICE=METHOD; round_robin, least_conn, ip_hash, random, 'random two least_conn', 'hash KEY [consistent]' (repeatable)")
	bin := fs.String("nginx", "nginx", "nginx binary")
	prefix := fs.String("nginx-prefix", "", "nginx -p for validation and reload (default: nginx's own)")
	conf := fs.String("nginx-conf", "", "nginx -c for validation and reload (default: nginx's own)")
	listen := fs.String("listen", "", "run an nginx of warren's own on this host:port, proxying /NAME/… to NAME (127.0.0.1:0: a free port)")
	dir := fs.String("dir", ".warren/edge-nginx", "with --listen: the nginx's configuration, logs and temporary files")
	readTimeout := fs.Duration("read-timeout", nginx.DefaultReadTimeout, "with --listen: how long nginx waits for an instance between two reads or writes before it counts it failed and (for idempotent requests) tries another; raise it for endpoints slower than that")
	retryNonIdempotent := fs.Bool("retry-non-idempotent", false, "with --listen: let nginx retry a POST, PATCH or LOCK on another instance after a timeout or error (only if your services dedupe them, docs/client.md idempotency keys)")
	debounce := fs.Duration("debounce", 200*time.Millisecond, "how long discovery must stay quiet before a reload; keep debounce + reload time under the services' --grace")
	maxDelay := fs.Duration("max-delay", time.Second, "longest a change waits while changes keep coming")
	if err := parseEdge(fs, args, env, nginxUsage); err != nil {
		return err
	}
	if (*out == "") == (*listen == "") {
		return regcli.Usage{Msg: "give exactly one of --out (your nginx) and --listen (warren runs nginx)"}
	}
	if *readTimeout <= 0 {
		return regcli.Usage{Msg: fmt.Sprintf("--read-timeout %s: must be positive", *readTimeout)}
	}
	ropts, err := renderOptions(*tmpl, balance)
	if err != nil {
		return err
	}
	r, err := nginx.NewRenderer(ropts...)
	if err != nil {
		return regcli.Usage{Msg: err.Error()}
	}
	logger, err := ef.logger(env.Stderr)
	if err != nil {
		return err
	}
	reg, services, err := ef.open(ctx, logger)
	if err != nil {
		return err
	}
	defer reg.Close()
	for _, b := range balance {
		if svc, _, ok := strings.Cut(b, "="); ok && !slices.Contains(services, svc) {
			level.Warn(logger).Log("msg", "--balance names a service the edge does not follow; it has no effect", "service", svc, "services", joinNames(services))
		}
	}
	w, err := edge.NewWatcher(reg, services, edge.WithDebounce(*debounce), edge.WithMaxDelay(*maxDelay), edge.WithLogger(logger))
	if err != nil {
		return regcli.Usage{Msg: err.Error()}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var ctl nginx.Control = nginx.Command{Bin: *bin, Prefix: *prefix, Conf: *conf}
	path := *out
	var died atomic.Bool // our nginx exited on its own
	if *listen != "" {
		addr := *listen
		if strings.HasSuffix(addr, ":0") {
			addr = "" // Start picks a free port
		}
		proc, err := nginx.Start(ctx, nginx.ProcessConfig{Dir: *dir, Listen: addr, Services: services, Bin: *bin, Stderr: env.Stderr,
			ReadTimeout: *readTimeout, RetryNonIdempotent: *retryNonIdempotent})
		if err != nil {
			return err
		}
		defer proc.Stop()
		if pids := proc.Stopped(); len(pids) > 0 {
			level.Warn(logger).Log("msg", "stopped an nginx a previous run left in --dir (warren was killed, not stopped)", "dir", *dir, "pids", fmt.Sprint(pids))
		}
		if sf := proc.StartFile(); sf.Refused != nil {
			level.Warn(logger).Log("msg", sf.String())
		} else {
			level.Info(logger).Log("msg", sf.String())
		}
		ctl, path = proc, proc.Upstreams()
		fmt.Fprintf(env.Stdout, "nginx serving on %s: %s/NAME/… goes to service NAME (%s)\n", proc.URL(), proc.URL(), joinNames(services))
		go func() { // owned by runNginx: ends with ctx (cancelled on return)
			select {
			case <-proc.Exited():
				level.Error(logger).Log("msg", "nginx exited; stopping", "error_log", filepath.Join(*dir, "error.log"))
				died.Store(true)
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	syncer, err := nginx.NewSyncer(path, r, ctl)
	if err != nil {
		return err
	}
	kept := false // the last Sync kept the existing file for unlisted services
	skipped := "" // instances the last Sync left out
	err = w.Run(ctx, func(ctx context.Context, snap edge.Snapshot) error {
		res, err := syncer.Sync(ctx, snap)
		if res.Skipped != skipped {
			if res.Skipped != "" {
				level.Warn(logger).Log("msg", "instances left out of nginx: no http endpoint (gRPC-only, or https only: TLS to upstreams is not supported yet, docs/edge.md)", "skipped", res.Skipped)
			} else {
				level.Info(logger).Log("msg", "no instance left out of nginx any more")
			}
			skipped = res.Skipped
		}
		if err != nil {
			return err
		}
		switch {
		case res.Kept && !kept:
			level.Warn(logger).Log("msg", "registry has not listed every service yet; keeping the existing upstreams file (the previous run's sets; placeholders for services it did not follow) until it does",
				"file", path, "unlisted", joinNames(res.Unlisted), "placeholders", joinNames(res.Placeholders))
		case res.Written:
			level.Info(logger).Log("msg", "upstreams applied", "file", path, "version", snap.Version, "instances", edge.Summary(snap), "reloads", syncer.Stats().Reloads)
		case !res.Kept:
			level.Debug(logger).Log("msg", "upstreams unchanged; nothing written or reloaded", "version", snap.Version, "instances", edge.Summary(snap))
		}
		kept = res.Kept
		return nil
	})
	if err != nil {
		return err
	}
	if died.Load() {
		return fmt.Errorf("nginx exited on its own (see %s)", filepath.Join(*dir, "error.log"))
	}
	return nil
}

// renderOptions reads --template and --balance.
func renderOptions(tmplPath string, balance []string) ([]nginx.RenderOption, error) {
	var opts []nginx.RenderOption
	if tmplPath != "" {
		b, err := os.ReadFile(tmplPath)
		if err != nil {
			return nil, regcli.Usage{Msg: fmt.Sprintf("--template: %v", err)}
		}
		opts = append(opts, nginx.WithTemplate(string(b)))
	}
	for _, b := range balance {
		svc, method, ok := strings.Cut(b, "=")
		if !ok {
			svc, method = "", b
		}
		opts = append(opts, nginx.WithBalance(svc, method))
	}
	return opts, nil
}
