package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kit/kit/sd"
	"github.com/go-kit/log"
	"google.golang.org/grpc"

	"github.com/warren-mesh/warren/framework/client"
	"github.com/warren-mesh/warren/framework/config"
	"github.com/warren-mesh/warren/framework/health"
	"github.com/warren-mesh/warren/framework/registry"
	"github.com/warren-mesh/warren/framework/registry/registrytest/toyregistry"
	"github.com/warren-mesh/warren/framework/retry"
	"github.com/warren-mesh/warren/framework/snapshot"
	"github.com/warren-mesh/warren/internal/syncbuf"
)

// toys lists the only backend these tests link in: a toy that lives in its
// own package, as a third-party backend would.
var toys = WithRegistries(toyregistry.Backend())

func hello(ctx context.Context, d *Deps) (Transports, error) {
	return HTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })), nil
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

func TestRun_HelpAndBadFlagsExitCodes(t *testing.T) {
	var out bytes.Buffer
	if code := Run(context.Background(), "svc", "1", []string{"--help"}, &out, hello, toys); code != 0 || !strings.Contains(out.String(), "WARREN_LISTEN") {
		t.Fatalf("--help: code %d\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "svc healthcheck [flags]") {
		t.Errorf("--help does not name the healthcheck command:\n%s", out.String())
	}
	out.Reset()
	if code := Run(context.Background(), "svc", "1", []string{"healthcheck", "--help"}, &out, hello, toys); code != 0 ||
		!strings.Contains(out.String(), "Usage: svc healthcheck [flags]") || !strings.Contains(out.String(), "GET /readyz") || !strings.Contains(out.String(), "WARREN_LISTEN") {
		t.Fatalf("healthcheck --help: code %d\n%s", code, out.String())
	}
	out.Reset()
	if code := Run(context.Background(), "svc", "1", []string{"--registry", "zk"}, &out, hello, toys); code != 2 || !strings.Contains(out.String(), "--registry") {
		t.Fatalf("bad flag: code %d\n%s", code, out.String())
	}
}

func TestRun_OpensTheBackendTheRegistryFlagNamesWithItsOwnFlags(t *testing.T) {
	args := []string{"--registry", "toy", "--toy-label", "from-flag", "--listen", "127.0.0.1:0", "--grace", "0s"}
	var label string
	errStop := errors.New("seen")
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		if r, ok := d.Discovery.(*toyregistry.Registry); ok {
			label = r.Label
		}
		return Transports{}, errStop
	}
	var out bytes.Buffer
	if code := Run(context.Background(), "svc", "1", args, &out, build, toys); code != 1 || !strings.Contains(out.String(), "seen") {
		t.Fatalf("code %d\n%s", code, out.String())
	}
	if label != "from-flag" {
		t.Fatalf("build got registry label %q, want the toy backend opened with --toy-label", label)
	}
	out.Reset()
	if code := Run(context.Background(), "svc", "1", []string{"--registry", "toy", "--toy-label", ""}, &out, build, toys); code != 2 || !strings.Contains(out.String(), "--toy-label") {
		t.Fatalf("bad backend flag: code %d\n%s", code, out.String())
	}
	out.Reset()
	if code := Run(context.Background(), "svc", "1", []string{"--registry", "toy"}, &out, build); code != 2 || !strings.Contains(out.String(), "no registry backend") {
		t.Fatalf("no backends listed: code %d\n%s", code, out.String())
	}
}

// A backend's open error is named by its registry once: backends that
// name themselves ("etcd registry at …") are not prefixed again.
func TestRun_RegistryOpenErrorNamesTheRegistryOnce(t *testing.T) {
	for openErr, want := range map[string]string{
		"toy registry at 127.0.0.1:1: refused": "toy registry at 127.0.0.1:1: refused",
		"refused":                              "toy registry: refused",
	} {
		var out bytes.Buffer
		code := Run(context.Background(), "svc", "1", []string{"--registry", "toy", "--toy-open-error", openErr, "--listen", "127.0.0.1:0"}, &out, hello, toys)
		if code != 1 || !strings.Contains(out.String(), want) || strings.Count(out.String(), "toy registry") != 1 {
			t.Errorf("open error %q: code %d, output %q; want %q once", openErr, code, out.String(), want)
		}
	}
}

func TestRun_ServesUntilCancelledAndHealthcheckProbesIt(t *testing.T) {
	port := freePort(t)
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s"}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Run(ctx, "svc", "1", args, out, hello, toys) }()

	deadline := time.Now().Add(10 * time.Second)
	for Run(context.Background(), "svc", "1", append([]string{"healthcheck"}, args...), io.Discard, nil, toys) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never passed\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://127.0.0.1:" + port + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "hi" {
		t.Fatalf("body %q", b)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit code %d\n%s", code, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop")
	}
	if code := Run(context.Background(), "svc", "1", append([]string{"healthcheck"}, args...), io.Discard, nil, toys); code != 1 {
		t.Fatalf("healthcheck of a stopped service = %d, want 1", code)
	}
	for _, phase := range []string{"phase=listen", "phase=register", "phase=release", "phase=exit"} {
		if !strings.Contains(out.String(), phase) {
			t.Errorf("log lacks %s", phase)
		}
	}
}

func TestClientOptions_AttemptTimeoutCutsOffAHungInstance(t *testing.T) {
	block := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(block)

	cfg := config.Default("caller", "")
	cfg.ClientAttemptTimeout = 100 * time.Millisecond
	d := &Deps{Config: cfg, Logger: log.NewNopLogger()}
	inst := registry.Instance{ID: "hung", Name: "callee", Endpoints: []string{registry.EndpointURL("http", "127.0.0.1", hung.Listener.Addr().(*net.TCPAddr).Port)}}
	c := must(client.NewFromInstancer(sd.FixedInstancer{inst.String()}, "callee", d.ClientOptions()...))
	defer c.Close()

	// The call's own deadline only keeps a broken attempt timeout from
	// hanging the test: the error must be the attempt timeout, not it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := client.Call[struct{}, struct{}](ctx, c, "GET", "/x", struct{}{})
	if !errors.Is(err, retry.ErrAttemptTimeout) {
		t.Fatalf("err = %v, want a per-attempt timeout", err)
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// What a build function handed to OnClose is closed when the build then
// fails (round 1 leaked it; order's main closed its client by hand), and
// the failure to close is reported, not swallowed.
func TestRun_BuildErrorClosesWhatOnCloseGot(t *testing.T) {
	var closed []string
	build := func(ctx context.Context, d *Deps) (Transports, error) {
		d.OnClose(closerFunc(func() error { closed = append(closed, "first"); return nil }))
		d.OnClose(closerFunc(func() error { closed = append(closed, "second"); return errors.New("stuck") }))
		return Transports{}, errors.New("no database")
	}
	var out syncbuf.Buffer
	code := Run(context.Background(), "svc", "1", []string{"--registry", "toy", "--listen", "127.0.0.1:0"}, &out, build, toys)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !slices.Equal(closed, []string{"second", "first"}) {
		t.Fatalf("closed %v, want both in reverse order", closed)
	}
	for _, want := range []string{"no database", "stuck"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
}

// Trace export failures are the service's own log lines (level warn, its
// format), not OpenTelemetry's stdlib lines on stderr: bootstrap hands
// tracing the service's logger. The "collector" is a gRPC server without
// the trace service (UNIMPLEMENTED, which the exporter does not retry);
// the span of the one request is exported, and fails, when the service
// stops.
func TestRun_TraceExportFailuresGoToTheServiceLog(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	collector := grpc.NewServer()
	go collector.Serve(ln) //nolint:errcheck // ends with Stop
	defer collector.Stop()
	args := []string{"--registry", "toy", "--listen", "127.0.0.1:" + freePort(t), "--grace", "0s",
		"--otlp-endpoint", "http://" + ln.Addr().String()}
	var out *syncbuf.Buffer
	t.Run("serve", func(t *testing.T) { // its cleanup stops the service
		out = start(t, args, hello)
		resp, err := http.Get("http://" + args[3] + "/anything")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	})
	if !strings.Contains(out.String(), `msg="trace export failed; spans dropped" exporter=otlp`) || !strings.Contains(out.String(), "Unimplemented") {
		t.Fatalf("no export failure in the service's log:\n%s", out)
	}
}

// A registry outage fails "registered" on every instance at once; a
// container engine's health check must not follow it (docs/lifecycle.md),
// so `healthcheck --exclude registered` asks /readyz?exclude=registered of
// the real readiness handler and passes while the registration is being
// retried. A check the instance does not have is a usage error (exit 2),
// not a pass.
func TestHealthcheck_ExcludeLeavesTheRegistrationOut(t *testing.T) {
	set := health.NewSet(time.Second)
	set.Add("registered", func(context.Context) error { return errors.New("retrying since 10:00: keepalive of lease ended") })
	set.Add("draining", func(context.Context) error { return nil })
	var mu sync.Mutex
	var queries []string
	h := health.Handler(set, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	base := []string{"healthcheck", "--registry", "toy", "--listen", "127.0.0.1:" + port}

	for _, c := range []struct {
		args      []string
		code      int
		say, want string // in the output; the query /readyz got
	}{
		{nil, 1, "not ready: 503", ""},
		{[]string{"--exclude", "registered"}, 0, "", "exclude=registered"},
		{[]string{"--exclude=registered"}, 0, "", "exclude=registered"},
		{[]string{"-exclude", "registered,draining"}, 0, "", "exclude=registered&exclude=draining"},
		{[]string{"--exclude", "draining"}, 1, "not ready: 503", "exclude=draining"},
		{[]string{"--exclude", "registred"}, 2, `no such check`, "exclude=registred"},
		{[]string{"--exclude"}, 2, "--exclude needs a check name", "-"},
	} {
		mu.Lock()
		queries = nil
		mu.Unlock()
		var out bytes.Buffer
		args := append(slices.Clone(base), c.args...)
		code := Run(context.Background(), "svc", "1", args, &out, nil, toys)
		if code != c.code || !strings.Contains(out.String(), c.say) {
			t.Errorf("healthcheck %v: exit %d, %q; want %d saying %q", c.args, code, out.String(), c.code, c.say)
		}
		mu.Lock()
		got := strings.Join(queries, " ")
		mu.Unlock()
		if c.want != "-" && got != c.want {
			t.Errorf("healthcheck %v asked /readyz?%s, want ?%s", c.args, got, c.want)
		}
	}

	var help bytes.Buffer
	if code := Run(context.Background(), "svc", "1", []string{"healthcheck", "--help"}, &help, nil, toys); code != 0 ||
		!strings.Contains(help.String(), "--exclude registered") {
		t.Errorf("healthcheck --help does not describe --exclude:\n%s", help.String())
	}
}

// A certificate file that cannot be read is named as the service's own,
// with its flags (report j47c: it read "config: client TLS: …"); a bad
// CA for calls names the client side.
func TestRun_TLSFileErrorsNameTheirFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", missing, "--tls-key", missing}, "config: the service's TLS (--tls-cert, --tls-key, --tls-client-ca)"},
		{[]string{"--tls-ca", missing}, "config: TLS of calls to other services (--tls-ca"},
	} {
		var out bytes.Buffer
		args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:0"}, c.args...)
		if code := Run(context.Background(), "svc", "1", args, &out, hello, toys); code != 1 || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: code %d, output %q; want %q", c.args, code, out.String(), c.want)
		}
	}
}

// An unwritable --snapshot-dir ran the service without its snapshots, an
// error line per write (report j53d finding 9): it stops the start, naming
// the flag, before anything registers; a writable one is made.
func TestRun_UnwritableSnapshotDirStopsTheStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{file, filepath.Join(file, "sub")} {
		var out bytes.Buffer
		args := []string{"--registry", "toy", "--listen", "127.0.0.1:0", "--grace", "0s", "--snapshot-dir", dir}
		// The deadline ends a service that wrongly starts.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if code := Run(ctx, "svc", "1", args, &out, hello, toys); code != 1 || !strings.Contains(out.String(), `config: --snapshot-dir `) ||
			!strings.Contains(out.String(), `cannot write snapshots there: mkdir `+file+`: not a directory`) {
			t.Errorf("--snapshot-dir %s: code %d, output %q; want exit 1 naming the flag", dir, code, out.String())
		}
	}
	ok := filepath.Join(t.TempDir(), "snapshots")
	if err := snapshot.CheckDir(ok); err != nil {
		t.Fatalf("CheckDir(%s): %v", ok, err)
	}
	if left, _ := os.ReadDir(ok); len(left) != 0 {
		t.Fatalf("CheckDir left %v behind", left)
	}
}

// Every line names the instance (report j47c: two instances of a service
// in one pipeline could not be told apart): its --id, or without one the
// ID the App takes once it listens.
func TestRun_EveryLineNamesTheInstance(t *testing.T) {
	port := freePort(t)
	for _, c := range []struct {
		args []string
		id   string
	}{
		{nil, "svc-127.0.0.1-" + port},
		{[]string{"--id", "svc-a"}, "svc-a"},
	} {
		args := append([]string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s"}, c.args...)
		var out *syncbuf.Buffer
		t.Run(c.id, func(t *testing.T) { out = start(t, args, hello) })
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		for _, l := range lines {
			if !strings.Contains(l, " id="+c.id+" ") {
				t.Errorf("line without id=%s: %s", c.id, l)
			}
		}
		if len(lines) < 3 {
			t.Errorf("only %d lines:\n%s", len(lines), out)
		}
	}
}

// --access-log reaches the HTTP server through the App: off writes no
// access line, all (the default) one per request.
func TestRun_AccessLogFlag(t *testing.T) {
	for _, c := range []struct {
		flag string
		want bool
	}{{"all", true}, {"off", false}} {
		port := freePort(t)
		var out *syncbuf.Buffer
		t.Run(c.flag, func(t *testing.T) {
			out = start(t, []string{"--registry", "toy", "--listen", "127.0.0.1:" + port, "--grace", "0s", "--access-log", c.flag}, hello)
			resp, err := http.Get("http://127.0.0.1:" + port + "/hello")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		})
		if got := strings.Contains(out.String(), "msg=access method=GET path=/hello"); got != c.want {
			t.Errorf("--access-log=%s: access line %v, want %v:\n%s", c.flag, got, c.want, out)
		}
	}
}

// A service listening on one address that is not 127.0.0.1 ([::1] here;
// 10.0.0.5 in a pod) answers only there: healthcheck must probe it, not
// 127.0.0.1, or the container is never healthy.
func TestHealthcheck_ProbesTheAddressListenNames(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	args := []string{"--registry", "toy", "--listen", "[::1]:" + port, "--grace", "0s"}
	out := &syncbuf.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- Run(ctx, "svc", "1", args, out, hello, toys) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("did not stop")
		}
	}()

	deadline := time.Now().Add(10 * time.Second)
	for {
		var probe syncbuf.Buffer
		if Run(context.Background(), "svc", "1", append([]string{"healthcheck"}, args...), &probe, nil, toys) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck of a service on [::1] never passed: %s\nservice log:\n%s", &probe, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProbeHost(t *testing.T) {
	for listen, want := range map[string]string{
		"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "127.0.0.1",
		"127.0.0.1": "127.0.0.1", "::1": "::1", "10.0.0.5": "10.0.0.5", "svc.local": "svc.local",
	} {
		if got := probeHost(listen); got != want {
			t.Errorf("probeHost(%q) = %q, want %q", listen, got, want)
		}
	}
}
