package nginx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/warren-mesh/warren/framework/edge"
	"github.com/warren-mesh/warren/internal/proc"
)

// ErrNoNginx is returned (wrapped) by Start when no nginx binary is found.
var ErrNoNginx = errors.New("nginx binary not found (Debian: apt-get install nginx-light)")

// ProcessConfig says how Start runs nginx.
type ProcessConfig struct {
	// Dir holds the configuration, the upstreams file, the pid file, logs
	// and nginx's temporary directories; it is created if missing.
	Dir string
	// Listen is the address nginx serves on, host:port; default a free
	// port on 127.0.0.1.
	Listen string
	// Services get a location each: /NAME/… goes to upstream NAME with the
	// /NAME prefix removed.
	Services []string
	// Bin is the nginx binary; default "nginx" from PATH.
	Bin string
	// Stderr receives nginx's own output (default: discarded; the error
	// log is Dir/error.log).
	Stderr io.Writer
	// ReadTimeout is how long nginx waits for an instance between two
	// reads of its answer (and two writes of the request):
	// proxy_read_timeout and proxy_send_timeout. An instance that accepts
	// the connection but does not answer (hung, SIGSTOPped) costs an
	// idempotent request this long before nginx tries the next instance
	// and takes the hung one out for fail_timeout. Default
	// DefaultReadTimeout; raise it for endpoints that take longer than
	// that before their first byte.
	ReadTimeout time.Duration
	// RetryNonIdempotent lets nginx send a POST, PATCH or LOCK whose
	// instance timed out or failed after the request was sent to the next
	// instance too (proxy_next_upstream non_idempotent). Off by default:
	// such a request may have taken effect, and only an idempotent
	// endpoint (or one with idempotency keys) can take it twice.
	RetryNonIdempotent bool
}

// DefaultReadTimeout is ProcessConfig.ReadTimeout's default: past an
// ordinary request's time to first byte, short enough that a hung
// instance costs a request seconds, not the lease TTL it takes discovery
// to drop it.
const DefaultReadTimeout = 3 * time.Second

// Process is an nginx that Start runs. It implements Control by sending
// its master SIGHUP.
type Process struct {
	cfg      ProcessConfig
	conf     string
	nonce    string // in the health answer: this nginx, not another on the port
	proc     *proc.Proc
	stopped  []int // processes of a previous run Start stopped
	start    StartFile
	lock     *dirLock
	stopOnce sync.Once
}

// mainConf is the configuration of an nginx that Start runs. Retries:
// proxy_next_upstream sends a request that could not reach an instance
// (refused or reset connection, timeout before an answer) to the next
// one, so an instance that died before discovery caught up costs no
// error at the client; non-idempotent requests (POST) are retried only if
// nothing was sent yet, as nginx does by default, unless
// RetryNonIdempotent. The read timeout (ReadTimeout) bounds what a hung
// instance costs: a timeout counts as a failure, so with max_fails=1 the
// instance is skipped for fail_timeout after it.
const mainConf = `# Written by warren: an nginx in front of the mesh.
daemon off;
master_process on;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
# Every reload leaves the old workers finishing their connections; one
# long-lived client (a stream, a slow upload) would keep its worker, with
# its memory, for as long as it stays. Under churn they pile up, one per
# reload: 10 s is well past an ordinary request and bounds the pile.
worker_shutdown_timeout 10s;
error_log {{.Dir}}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/tmp/body;
    proxy_temp_path {{.Dir}}/tmp/proxy;
    fastcgi_temp_path {{.Dir}}/tmp/fastcgi;
    uwsgi_temp_path {{.Dir}}/tmp/uwsgi;
    scgi_temp_path {{.Dir}}/tmp/scgi;

    include {{.Dir}}/upstreams.conf;

    proxy_next_upstream error timeout http_502 http_503{{if .RetryNonIdempotent}} non_idempotent{{end}};
    proxy_next_upstream_tries 3;
    proxy_connect_timeout 2s;
    proxy_read_timeout {{.ReadTimeoutMS}}ms;
    proxy_send_timeout {{.ReadTimeoutMS}}ms;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;

    server {
        listen {{.Listen}};
        location = /_edge/healthz { return 200 "ok {{.Nonce}}\n"; }
{{- range .Services}}
        location /{{.}}/ { proxy_pass http://{{.}}/; }
{{- end}}
    }
}
`

// StartFile says what Start put in the upstreams file.
type StartFile struct {
	// Previous are the services whose upstream block is the one the
	// previous run in Dir left (its last good set, kept).
	Previous []string
	// Placeholders are the services Start gave the `down` placeholder:
	// all of them on a first start (no file) or when nginx refused the
	// previous file, else those the file has no set for (the previous
	// run did not follow them, or the registry never listed them since
	// an earlier start wrote their placeholder).
	Placeholders []string
	// Refused is nginx's error with the previous run's file, when it
	// refused it (Previous is then empty).
	Refused error
}

// String says it in a line, for the log.
func (f StartFile) String() string {
	switch {
	case f.Refused != nil:
		return fmt.Sprintf("nginx refused the previous run's upstreams file (%v); every service starts with the down placeholder: %s", f.Refused, strings.Join(f.Placeholders, ","))
	case len(f.Previous) == 0:
		return "no upstreams file from a previous run; every service starts with the down placeholder until discovery lists it: " + strings.Join(f.Placeholders, ",")
	case len(f.Placeholders) == 0:
		return "kept the previous run's upstreams file for every service: " + strings.Join(f.Previous, ",")
	}
	return fmt.Sprintf("kept the previous run's upstream blocks for %s; new services start with the down placeholder: %s", strings.Join(f.Previous, ","), strings.Join(f.Placeholders, ","))
}

// upstreamRE finds the upstream blocks of an upstreams file.
var upstreamRE = regexp.MustCompile(`(?m)^[ \t]*upstream[ \t]+([A-Za-z0-9_.-]+)[ \t]*\{`)

// serverRE finds the server lines of an upstream block's body.
var serverRE = regexp.MustCompile(`(?m)^[ \t]*server[ \t]+([^;]*);`)

// placeholderOnly reports whether an upstream block's body has no server
// but the down placeholder the templates write for a service without
// instances (server 127.0.0.1:1 down).
func placeholderOnly(body []byte) bool {
	for _, m := range serverRE.FindAllSubmatch(body, -1) {
		f := strings.Fields(string(m[1]))
		if len(f) == 0 || f[0] != "127.0.0.1:1" || !slices.Contains(f[1:], "down") {
			return false
		}
	}
	return true
}

// confData is what mainConf renders.
type confData struct {
	ProcessConfig
	Nonce         string
	ReadTimeoutMS int64
}

// Start writes the configuration, starts nginx and waits until it answers
// on Listen — itself, not an nginx left on the port: its health answer
// carries a token of this start. Stop stops it. nginx dies with this
// process: if this process is killed or crashes, the kernel sends the
// nginx master SIGTERM, and it stops its workers (see runMaster). An nginx
// that a previous run in Dir left running (a warren from before that rule,
// or a master killed on its own, whose workers go on serving a frozen
// set) is found by Dir's error log and pid file and stopped first
// (Stopped lists it).
//
// An upstreams file already in Dir (the last good set of a previous run)
// is kept, so a restart while the registry is unreachable serves that set
// (see Syncer.Sync): a service it has no upstream block for (added to
// Services since) gets a placeholder block appended, and the other
// services keep theirs. If nginx refuses that file, or there is none,
// every service gets a placeholder, so nginx starts before discovery
// answers. StartFile says which it was.
func Start(ctx context.Context, cfg ProcessConfig) (_ *Process, err error) {
	bin, err := exec.LookPath(binary(cfg.Bin))
	if err != nil {
		return nil, fmt.Errorf("nginx: %w: %w", ErrNoNginx, err)
	}
	cfg.Bin = bin
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	switch {
	case cfg.ReadTimeout == 0:
		cfg.ReadTimeout = DefaultReadTimeout
	case cfg.ReadTimeout < time.Millisecond:
		return nil, fmt.Errorf("nginx: read timeout %s: want at least 1ms", cfg.ReadTimeout)
	}
	if cfg.Listen == "" {
		if cfg.Listen, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
	}
	if err := checkWritable(cfg.Dir); err != nil {
		return nil, err
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.unlock()
		}
	}()
	stopped, err := stopLeftovers(cfg.Dir, bin)
	if err != nil {
		return nil, err
	}
	r, err := NewRenderer()
	if err != nil {
		return nil, err
	}
	placeholders, err := r.Render(emptySnapshot(cfg.Services))
	if err != nil {
		return nil, err
	}
	upstreams := filepath.Join(cfg.Dir, "upstreams.conf")
	var sf StartFile
	old, err := os.ReadFile(upstreams)
	kept := err == nil
	if kept {
		// The previous run's blocks stay; a service it did not follow
		// gets a placeholder block of its own, added at the end.
		// A block holding only the placeholder is no previous set: an
		// earlier start wrote it and the registry never listed the
		// service since. Taken for one, it made the Syncer keep the
		// whole file for that service, holding back the listed ones.
		have, sets := map[string]bool{}, map[string]bool{}
		for _, m := range upstreamRE.FindAllSubmatchIndex(old, -1) {
			name := string(old[m[2]:m[3]])
			have[name] = true
			body := old[m[1]:]
			if end := bytes.IndexByte(body, '}'); end >= 0 {
				body = body[:end]
			}
			sets[name] = sets[name] || !placeholderOnly(body)
		}
		var add []string // services with no block at all
		for _, svc := range cfg.Services {
			if sets[svc] {
				sf.Previous = append(sf.Previous, svc)
			} else {
				sf.Placeholders = append(sf.Placeholders, svc)
			}
			if !have[svc] {
				add = append(add, svc)
			}
		}
		if len(add) > 0 {
			add, err := r.Render(emptySnapshot(add))
			if err != nil {
				return nil, err
			}
			merged := append(append(bytes.TrimRight(old, "\n"), "\n\n# Added at start: services the previous run did not follow.\n"...), add...)
			if err := writeAtomic(upstreams, merged); err != nil {
				return nil, err
			}
		}
	} else {
		sf.Placeholders = cfg.Services
		if err := writeAtomic(upstreams, placeholders); err != nil {
			return nil, err
		}
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	p := &Process{cfg: cfg, conf: filepath.Join(cfg.Dir, "nginx.conf"), nonce: hex.EncodeToString(nonce[:]), stopped: stopped, lock: lock}
	var b strings.Builder
	if err := template.Must(template.New("nginx.conf").Parse(mainConf)).Execute(&b, confData{cfg, p.nonce, cfg.ReadTimeout.Milliseconds()}); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	if err := writeAtomic(p.conf, []byte(b.String())); err != nil {
		return nil, err
	}
	err = p.command().Test(ctx)
	if err != nil && kept {
		// nginx refuses the old file with this configuration:
		// placeholders, as on a first start.
		sf = StartFile{Placeholders: cfg.Services, Refused: err}
		if err = writeAtomic(upstreams, placeholders); err == nil {
			err = p.command().Test(ctx)
		}
	}
	p.start = sf
	if err != nil {
		return nil, fmt.Errorf("nginx: %w: %w", ErrInvalidConfig, err)
	}
	cmd := exec.Command(bin, "-p", cfg.Dir, "-c", p.conf)
	cmd.Stdout, cmd.Stderr = cfg.Stderr, cfg.Stderr
	// Its own process group, and it dies with us: never an nginx left over.
	if p.proc, err = runMaster(cmd); err != nil {
		return nil, err
	}
	if err = p.waitServing(ctx, 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func emptySnapshot(services []string) (snap edge.Snapshot) {
	for _, s := range services {
		snap.Services = append(snap.Services, edge.Service{Name: s})
	}
	return snap
}

func (p *Process) command() Command { return Command{Bin: p.cfg.Bin, Prefix: p.cfg.Dir, Conf: p.conf} }

func (p *Process) waitServing(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL()+"/_edge/healthz", nil)
		if resp, err := c.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "ok "+p.nonce {
				return nil // our nginx, not one another process left on the port
			}
		}
		select {
		case <-p.proc.Exited():
			log, _ := os.ReadFile(filepath.Join(p.cfg.Dir, "error.log"))
			return fmt.Errorf("nginx: exited at start: %s", strings.TrimSpace(string(log)))
		case <-ctx.Done():
			return fmt.Errorf("nginx: not serving on %s: %w", p.cfg.Listen, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URL is where nginx serves: http://host:port.
func (p *Process) URL() string { return "http://" + p.cfg.Listen }

// Upstreams is the path of the upstreams file nginx includes.
func (p *Process) Upstreams() string { return filepath.Join(p.cfg.Dir, "upstreams.conf") }

// Pid is the nginx master's process ID.
func (p *Process) Pid() int { return p.proc.Pid() }

// StartFile says what Start put in the upstreams file: which services
// keep the previous run's block, which got a placeholder.
func (p *Process) StartFile() StartFile { return p.start }

// Previous is the services whose block in the upstreams file is the
// previous run's last good set (StartFile().Previous); a Syncer reaching
// this nginx asks it (see Syncer.Sync).
func (p *Process) Previous() []string { return p.start.Previous }

// Stopped lists the processes of an nginx that a previous run in Dir had
// left running and Start stopped before starting its own (empty almost
// always; worth a log line when not).
func (p *Process) Stopped() []int { return p.stopped }

// Test implements Control: nginx -t on the process's configuration.
func (p *Process) Test(ctx context.Context) error { return p.command().Test(ctx) }

// Reload implements Control: SIGHUP to the master, which starts workers
// with the new configuration and tells the old ones to stop accepting and
// finish their requests. Reload returns once a new worker runs and the old
// ones have exited (or 2 s after the new worker started, if an old one is
// still finishing a long request), so the new upstreams are what new
// connections get.
func (p *Process) Reload(ctx context.Context) error {
	select {
	case <-p.proc.Exited():
		return errors.New("nginx: not running")
	default:
	}
	old := workers(p.Pid())
	if err := p.proc.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("nginx: reload: %w", err)
	}
	if old == nil {
		return nil // no /proc: cannot watch the workers change
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var started time.Time
	for {
		now := workers(p.Pid())
		fresh, stale := false, false
		for w := range now {
			if old[w] {
				stale = true
			} else {
				fresh = true
			}
		}
		if fresh && started.IsZero() {
			started = time.Now()
		}
		if fresh && (!stale || time.Since(started) > 2*time.Second) {
			return nil
		}
		select {
		case <-p.proc.Exited():
			return errors.New("nginx: exited during reload")
		case <-ctx.Done():
			return fmt.Errorf("nginx: reload: no new worker process: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Exited is closed when nginx has exited.
func (p *Process) Exited() <-chan struct{} { return p.proc.Exited() }

// Stop asks nginx to finish in-flight requests and exit (SIGQUIT), and
// kills it after 10 s. It is idempotent.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		p.proc.Stop(syscall.SIGQUIT, 10*time.Second)
		p.lock.unlock()
	})
	return nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("nginx: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
